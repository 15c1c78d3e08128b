"""cloud-bridge: the only stage that talks to the cloud broker.

Pure parts live here next to each other: `spool` (durable store-and-forward
on SQLite), `token_bucket` (upload pacing to the allocated budget, live
traffic ahead of the backlog) and `upload_accounting` (bytes per topic class
and analytic, budget use). The MQTT shell wires them together.
"""
