"""A stage's own reports (`health/<stage>`, `metrics/<stage>`) as its door
publishes them, for the tests of what reads them (top, exporter, recorder)."""

from __future__ import annotations

import time
from typing import Literal

from schemas.service import Health, Metrics

State = Literal["ok", "degraded"]


def health_of(stage: str, state: State = "ok", uptime_s: float = 3, reconnects: int = 0) -> Health:
    """A connected stage's health report."""
    return Health(
        source=stage,
        stage=stage,
        state=state,
        uptime_s=uptime_s,
        connected=True,
        reconnects=reconnects,
    )


def metrics_of(
    stage: str,
    counters: dict[str, int],
    gauges: dict[str, float],
    *,
    interval_s: float = 10,
    ts: float | None = None,
) -> Metrics:
    """A stage's metrics report (sent now, unless `ts` says when)."""
    return Metrics(
        source=stage,
        stage=stage,
        ts=time.time() if ts is None else ts,
        interval_s=interval_s,
        counters=counters,
        gauges=gauges,
    )
