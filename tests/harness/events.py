"""Events and results as the stages publish them (gas-average,
audio-classifier, object-detector), for the tests of what consumes them
(alert-forwarder, cloud-bridge, telemetry)."""

from __future__ import annotations

import time

from schemas.audio import SoundEvent
from schemas.gas import Gas, GasEvent
from schemas.video import Box, DetectedObject, Detections


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


def detections(
    camera: str,
    scored: list[tuple[str, float]],
    inference_ms: float,
    capture_ts: float,
    seq: int = 1,
) -> Detections:
    """One 320x240 frame's detections: a (label, score) object each, all in one box."""
    box = Box(x1=0, y1=0, x2=10, y2=10)
    objects = [DetectedObject(label=label, score=score, box=box) for label, score in scored]
    return Detections(
        source="object-detector", camera=camera, seq=seq, capture_ts=capture_ts,
        width=320, height=240, objects=objects, inference_ms=inference_ms,
    )  # fmt: skip
