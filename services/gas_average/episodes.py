"""Threshold episodes with hysteresis and a minimum duration.

An episode opens (`new`) once the average has stayed at or above `enter` for
`min_duration_s`, rises (`update`) when its peak grows by `update_step`, and
closes (`end`) when the average falls below `exit` — or when the sensor falls
silent. Between `exit` and `enter` an open episode stays open: that gap is the
hysteresis that keeps a noisy reading from flapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.envelope import EventType, LifecycleStep
from services.gas_average.settings import GasThreshold


@dataclass(frozen=True, slots=True)
class GasEpisodeChange(LifecycleStep):
    value: float
    peak: float


class GasEpisode:
    """The episode state of one sensor and gas."""

    def __init__(self, series: str) -> None:
        self._series = series
        self._above_since: float | None = None
        self._event_id: str | None = None
        self._sequence = 0
        self._start_ts = 0.0
        self._peak = 0.0
        self._reported_peak = 0.0

    @property
    def open(self) -> bool:
        return self._event_id is not None

    def observe(
        self, ts: float, average: float, threshold: GasThreshold, update_step: float
    ) -> GasEpisodeChange | None:
        if self._event_id is None:
            return self._maybe_open(ts, average, threshold)
        if average < threshold.exit:
            return self.close(ts, average)
        self._peak = max(self._peak, average)
        if self._peak > self._reported_peak * (1 + update_step):
            self._reported_peak = self._peak
            return self._change("update", average, None)
        return None

    def _maybe_open(
        self, ts: float, average: float, threshold: GasThreshold
    ) -> GasEpisodeChange | None:
        if average < threshold.enter:
            self._above_since = None
            return None
        if self._above_since is None:
            self._above_since = ts
            self._peak = average
        self._peak = max(self._peak, average)
        if ts - self._above_since < threshold.min_duration_s:
            return None
        self._start_ts = self._above_since
        # Stable: the same episode always gets the same id, whoever computes it.
        self._event_id = f"{self._series}-{round(self._start_ts * 1000)}"
        self._sequence = 0
        self._reported_peak = self._peak
        return self._change("new", average, None)

    def close(self, ts: float, average: float) -> GasEpisodeChange | None:
        if self._event_id is None:
            return None
        change = self._change("end", average, ts)
        self._event_id = None
        self._above_since = None
        return change

    def _change(self, kind: EventType, value: float, end_ts: float | None) -> GasEpisodeChange:
        assert self._event_id is not None
        self._sequence += 1
        return GasEpisodeChange(
            type=kind,
            event_id=self._event_id,
            sequence=self._sequence,
            value=value,
            peak=self._peak,
            start_ts=self._start_ts,
            end_ts=end_ts,
        )
