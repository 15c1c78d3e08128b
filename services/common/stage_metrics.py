"""Counters and gauges a stage reports on `metrics/<stage>`."""

from __future__ import annotations

from collections import Counter


class StageMetrics:
    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.gauges: dict[str, float] = {}
        # Why the stage is not fully working (its server is down, it sheds
        # load ...), or None: reported as `degraded` on health/<stage>.
        self.degraded: str | None = None

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount

    def gauge(self, name: str, value: float) -> None:
        self.gauges[name] = value
