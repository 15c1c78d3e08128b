"""gas-average: per-sensor moving averages of gas readings and threshold
events with hysteresis and a minimum duration."""
