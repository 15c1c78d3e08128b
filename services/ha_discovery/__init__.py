"""ha-discovery: Home Assistant's MQTT device discovery, generated from the topic registry."""
