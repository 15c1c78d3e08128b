"""telemetry-recorder: readings, averages, detections, audio classes, events,
alerts, metrics and health into InfluxDB (v2 write API) as time series."""
