"""The one door to MQTT: every stage connects, publishes and subscribes
through `services.common.door.MqttDoor`; nothing else imports aiomqtt."""
