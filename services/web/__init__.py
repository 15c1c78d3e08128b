"""web: the operator's page — status, live alerts, the uplink and its allocation."""
