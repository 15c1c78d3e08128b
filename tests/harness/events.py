"""Lifecycle events as gas-average and audio-classifier publish them, for the
tests of what consumes them (alert-forwarder, cloud-bridge, telemetry)."""

from __future__ import annotations

import time

from schemas.audio import SoundEvent
from schemas.gas import Gas, GasEvent


def _new_gas_event(
    event_id: str, sensor: str, gas: Gas, value: float, threshold: float, start_ts: float
) -> GasEvent:
    return GasEvent(
        source="gas-average", type="new", event_id=event_id, sensor=sensor, gas=gas,
        label=f"{gas}_high", severity="critical", value=value, peak=value,
        threshold=threshold, start_ts=start_ts,
    )  # fmt: skip


def co_high(event_id: str, sensor: str = "kitchen", start_ts: float | None = None) -> GasEvent:
    """A new critical `co_high` episode: 60 over a threshold of 50, begun now
    (unless `start_ts`). With the default rules, one `new` alert."""
    begun = time.time() if start_ts is None else start_ts
    return _new_gas_event(event_id, sensor, "co", 60.0, 50.0, begun)


def methane_high(event_id: str, sensor: str = "boiler") -> GasEvent:
    """A new critical `methane_high` episode begun 5 s ago: 6000 over 5000."""
    return _new_gas_event(event_id, sensor, "methane", 6000.0, 5000.0, time.time() - 5)


def smoke_alarm(event_id: str, mic: str, start_ts: float, score: float = 0.9) -> SoundEvent:
    """A new `smoke_alarm` sound event (YAMNet's smoke detector class at `score`)."""
    return SoundEvent(
        source="audio-classifier", type="new", event_id=event_id, mic=mic,
        label="smoke_alarm", top_class="Smoke detector, smoke alarm",
        score=score, peak_score=score, start_ts=start_ts,
    )  # fmt: skip
