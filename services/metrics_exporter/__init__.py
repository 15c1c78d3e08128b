"""metrics-exporter: every stage's `metrics/<stage>` and `health/<stage>` as Prometheus metrics."""
