"""Object detector stage: SSD detection on frames, tracking, zones, lifecycle events."""
