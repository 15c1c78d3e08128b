"""Object tracker stage: every detector replica's detections in frame order,
tracks, zones, lifecycle events and snapshots."""
