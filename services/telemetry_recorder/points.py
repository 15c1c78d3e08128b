"""Messages -> InfluxDB line-protocol points (pure: no I/O).

One measurement per kind of message; tags are what an operator groups by
(gateway, sensor/gas, camera/label, mic/class, stage), fields are the numbers.
Every point is stamped with a time from the message itself (nanoseconds), so a
redelivered message overwrites its own point in InfluxDB instead of adding one.

Only numeric and boolean fields are written: string fields cannot be graphed,
and VictoriaMetrics (the test server) drops them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from schemas.alerts import Alert, UplinkUsage
from schemas.audio import AudioClasses, SoundEvent
from schemas.envelope import Envelope
from schemas.gas import GasAverage, GasEvent, GasReading
from schemas.service import Health, Metrics
from schemas.video import Detections, MotionScore, ObjectEvent

FieldValue = float | int | bool
NANOSECONDS: Final = 1_000_000_000
_FIELD_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int

    def to_line(self) -> str:
        """The point in InfluxDB line protocol; tags sorted, as InfluxDB prefers."""
        head = _escape_measurement(self.measurement)
        for key in sorted(self.tags):
            value = self.tags[key]
            if value:  # an empty tag value is invalid line protocol
                head += f",{_escape_key(key)}={_escape_key(value)}"
        fields = ",".join(
            f"{_escape_key(key)}={_field_value(value)}" for key, value in self.fields.items()
        )
        return f"{head} {fields} {self.time_ns}"


def _escape_measurement(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def _escape_key(text: str) -> str:
    """Tag keys, tag values and field keys."""
    escaped = text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
    return escaped.replace(" ", "\\ ").replace("\n", "\\n")


def _field_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    return repr(float(value))


def _nanoseconds(ts: float) -> int:
    return round(ts * NANOSECONDS)


def _finite(fields: dict[str, FieldValue]) -> dict[str, FieldValue]:
    # NaN and infinities are not line protocol; a metric gauge may hold one.
    return {k: v for k, v in fields.items() if not isinstance(v, float) or math.isfinite(v)}


def _field_name(name: str) -> str:
    return _FIELD_NAME.sub("_", name)[:128] or "_"


def points_for(message: Envelope, gateway: str) -> list[Point]:
    """The points one received message becomes (possibly none)."""
    base = {"gateway": gateway, "stage": message.source}
    time_ns = _nanoseconds(message.ts)
    points = _points(message, base, time_ns)
    return [p for p in points if p.fields]


def _points(message: Envelope, base: dict[str, str], time_ns: int) -> list[Point]:
    match message:
        case GasReading():
            tags = {**base, "sensor": message.sensor, "gas": message.gas}
            return [Point("gas_reading", tags, {"value": message.value}, time_ns)]
        case GasAverage():
            tags = {**base, "sensor": message.sensor, "gas": message.gas}
            fields: dict[str, FieldValue] = {
                "time_average": message.time_average,
                "count_average": message.count_average,
                "time_samples": message.time_samples,
                "count_samples": message.count_samples,
                "last_value": message.last_value,
            }
            return [Point("gas_average", tags, _finite(fields), time_ns)]
        case Detections():
            return _detection_points(message, base, time_ns)
        case MotionScore():
            tags = {**base, "camera": message.camera}
            fields = {"score": message.score, "motion": message.motion}
            return [Point("motion", tags, fields, time_ns)]
        case AudioClasses():
            return _audio_class_points(message, base)
        case GasEvent() | ObjectEvent() | SoundEvent():
            return [_event_point(message, base, time_ns)]
        case Alert():
            tags = {**base, "label": message.label, "severity": message.severity}
            tags["type"] = message.type
            fields = {"count": 1, "parts": len(message.parts)}
            if message.end_ts is not None:
                fields["duration_s"] = max(0.0, message.end_ts - message.start_ts)
            return [Point("alert", tags, fields, time_ns)]
        case Metrics():
            tags = {**base, "stage": message.stage}
            fields = {"interval_s": message.interval_s}
            fields.update({_field_name(k): v for k, v in message.counters.items()})
            fields.update({_field_name(k): float(v) for k, v in message.gauges.items()})
            return [Point("stage_metrics", tags, _finite(fields), time_ns)]
        case Health():
            tags = {**base, "stage": message.stage, "state": message.state}
            fields = {
                "uptime_s": message.uptime_s,
                "connected": message.connected,
                "reconnects": message.reconnects,
            }
            return [Point("stage_health", tags, fields, time_ns)]
        case UplinkUsage():
            return _uplink_points(message, base, time_ns)
    return []


def _detection_points(message: Detections, base: dict[str, str], time_ns: int) -> list[Point]:
    tags = {**base, "camera": message.camera}
    fields: dict[str, FieldValue] = {
        "objects": len(message.objects),
        "inference_ms": message.inference_ms,
    }
    points = [Point("detections", tags, fields, time_ns)]
    by_label: dict[str, list[float]] = {}
    for found in message.objects:
        by_label.setdefault(found.label, []).append(found.score)
    for label, scores in sorted(by_label.items()):
        label_fields: dict[str, FieldValue] = {"count": len(scores), "max_score": max(scores)}
        points.append(Point("detections_by_label", {**tags, "label": label}, label_fields, time_ns))
    return points


def _audio_class_points(message: AudioClasses, base: dict[str, str]) -> list[Point]:
    # Stamped with the patch's start: patches of one mic are 0.48 s apart,
    # while several are often published within the same millisecond.
    time_ns = _nanoseconds(message.start_ts)
    tags = {**base, "mic": message.mic}
    return [
        Point(
            "audio_class",
            {**tags, "class": scored.name},
            {"score": scored.score, "rank": rank, "patch_index": message.patch_index},
            time_ns,
        )
        for rank, scored in enumerate(message.top, start=1)
    ]


def _event_point(
    message: GasEvent | ObjectEvent | SoundEvent, base: dict[str, str], time_ns: int
) -> Point:
    tags = {**base, "kind": message.kind, "label": message.label, "type": message.type}
    fields: dict[str, FieldValue] = {"count": 1}
    if message.end_ts is not None:
        fields["duration_s"] = max(0.0, message.end_ts - message.start_ts)
    match message:
        case GasEvent():
            tags.update(sensor=message.sensor, gas=message.gas, severity=message.severity)
            fields.update(value=message.value, peak=message.peak, threshold=message.threshold)
        case ObjectEvent():
            tags["camera"] = message.camera
            fields.update(score=message.score, top_score=message.top_score)
        case SoundEvent():
            tags.update(mic=message.mic, **{"class": message.top_class})
            fields.update(score=message.score, peak_score=message.peak_score)
    return Point("event", tags, _finite(fields), time_ns)


def _uplink_points(message: UplinkUsage, base: dict[str, str], time_ns: int) -> list[Point]:
    fields: dict[str, FieldValue] = {
        "used_kbps": message.used_kbps,
        "spool_entries": message.spool_entries,
        "spool_bytes": message.spool_bytes,
        "cloud_connected": message.cloud_connected,
    }
    if message.budget_kbps is not None:
        fields["budget_kbps"] = message.budget_kbps
    points = [Point("uplink_usage", dict(base), _finite(fields), time_ns)]
    for topic_class, sent in sorted(message.bytes_by_class.items()):
        lost = message.losses.get(topic_class, 0)
        points.append(
            Point(
                "uplink_bytes",
                {**base, "topic_class": topic_class},
                {"bytes": sent, "lost": lost},
                time_ns,
            )
        )
    return points
