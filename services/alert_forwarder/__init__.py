"""alert-forwarder: turns lifecycle events into curated alerts.

`rules` decides per event (severity, minimum duration, cooldown, quiet
hours, zones, dedup); `fusion` merges coinciding events of different kinds
in one place into one incident. The MQTT shell feeds both and publishes.
"""
