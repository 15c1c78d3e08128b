"""gas-replay: a gas source. Replays a recorded trace (CSV: time, sensor, gas,
value) at real or accelerated speed, or simulates sensors (baseline, noise,
drift, leak episodes) when no trace is given."""
