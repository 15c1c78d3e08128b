"""Test harness: a real Mosquitto on a free port with the project's config,
an independent MQTT probe (plain paho, not the door under test), and stages
run as real processes."""
