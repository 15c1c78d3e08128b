"""Simulated gas sensors: what a metal-oxide sensor near a real source reports.

Each series is baseline + slow drift (an Ornstein-Uhlenbeck walk, as the
sensor's heater and the room's air change) + leak episodes (Poisson arrivals;
a rise, a plateau and an exponential decay as the room airs out) + noise.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from schemas.gas import Gas

# Clean-air readings in ppm of typical MQ-series sensors, and how high a leak
# goes: a multiple of the alarm threshold (so episodes are clearly alarms).
BASELINE_PPM: dict[str, float] = {
    "co": 3.0,
    "smoke": 25.0,
    "methane": 400.0,
    "lpg": 150.0,
    "co2": 450.0,
    "h2": 100.0,
    "no2": 0.5,
}
LEAK_PEAK_PPM: dict[str, tuple[float, float]] = {
    "co": (80.0, 300.0),
    "smoke": (300.0, 900.0),
    "methane": (7000.0, 20000.0),
    "lpg": (2500.0, 8000.0),
    "co2": (2500.0, 5000.0),
    "h2": (5000.0, 12000.0),
    "no2": (6.0, 20.0),
}
DRIFT_TIME_CONSTANT_S = 600.0


@dataclass
class _Leak:
    start: float
    rise_s: float
    hold_s: float
    decay_s: float
    peak: float

    def level(self, t: float) -> float:
        since = t - self.start
        if since < 0:
            return 0.0
        if since < self.rise_s:
            return self.peak * since / self.rise_s
        if since < self.rise_s + self.hold_s:
            return self.peak
        return self.peak * math.exp(-(since - self.rise_s - self.hold_s) / self.decay_s)

    def over(self, t: float) -> bool:
        return t - self.start > self.rise_s + self.hold_s + 8 * self.decay_s


@dataclass
class SimulatedSensor:
    sensor: str
    gas: Gas
    rng: random.Random
    leak_rate_per_s: float
    drift: float = 0.0
    leaks: list[_Leak] = field(default_factory=list)

    def start_leak(self, t: float) -> None:
        low, high = LEAK_PEAK_PPM[self.gas]
        self.leaks.append(
            _Leak(
                start=t,
                rise_s=self.rng.uniform(5, 20),
                hold_s=self.rng.uniform(15, 60),
                decay_s=self.rng.uniform(5, 20),
                peak=self.rng.uniform(low, high),
            )
        )

    def sample(self, t: float, period_s: float) -> float:
        baseline = BASELINE_PPM[self.gas]
        # OU drift: pulled back towards 0, wanders by ~5 % of the baseline.
        pull = period_s / DRIFT_TIME_CONSTANT_S
        self.drift += -self.drift * pull + self.rng.gauss(0, 0.05 * baseline * math.sqrt(pull))
        if self.rng.random() < self.leak_rate_per_s * period_s:
            self.start_leak(t)
        self.leaks = [leak for leak in self.leaks if not leak.over(t)]
        signal = baseline + self.drift + sum(leak.level(t) for leak in self.leaks)
        noise = self.rng.gauss(0, 0.03 * signal + 0.01 * baseline)
        return max(0.0, signal + noise)


def make_sensors(
    pairs: list[tuple[str, Gas]], leak_rate_per_hour: float, seed: int | None
) -> list[SimulatedSensor]:
    rng = random.Random(seed)
    return [
        SimulatedSensor(sensor, gas, random.Random(rng.random()), leak_rate_per_hour / 3600)
        for sensor, gas in pairs
    ]
