"""Broker configuration: mosquitto.conf, and the ACL and password files
generated from the topic registry."""
