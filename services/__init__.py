"""The stages of edgegw, one package each, plus `common` (the MQTT door)."""
