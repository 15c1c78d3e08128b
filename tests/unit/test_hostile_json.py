"""Hostile JSON against every JSON topic of the registry: each payload is
refused (pydantic.ValidationError) or survives a round trip unchanged, with
every number finite and every integer one orjson can write.

Each model starts from a valid example; hypothesis puts NaN, Infinity, huge
numbers, unsafe strings, wrong types and nested junk in its fields, adds
fields, or replaces the whole document.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.envelope import Envelope
from schemas.topics import GAS_READING, REGISTRY, AnyTopicSpec
from tests.unit.deploy_examples import DEPLOY_EXAMPLES

TS = 1_800_000_000.0
_LEVEL = {"name": "full", "params": {"fps": 10, "width": 640}, "cost_kbps": 800.0, "utility": 1}
_BOX = {"x1": 1.0, "y1": 2.0, "x2": 30.0, "y2": 40.0}
_COMMON = {"schema_version": 1, "ts": TS, "id": "m1"}

EXAMPLES: dict[str, dict[str, Any]] = {
    "GasReading": {"source": "gas-replay", "sensor": "s1", "gas": "co", "value": 12.5},
    "GasAverage": {
        "source": "gas-average", "sensor": "s1", "gas": "co", "time_window_s": 10.0,
        "time_average": 11.0, "time_samples": 10, "count_window": 10, "count_average": 11.5,
        "count_samples": 10, "last_value": 12.0, "reading_id": "r1",
    },
    "GasEvent": {
        "source": "gas-average", "kind": "gas", "type": "new", "event_id": "e1",
        "sensor": "s1", "gas": "co", "label": "co_high", "severity": "warning",
        "value": 60.0, "peak": 61.0, "threshold": 50.0, "start_ts": TS, "end_ts": None,
    },
    "ObjectEvent": {
        "source": "object-detector", "kind": "object", "type": "update", "event_id": "o1",
        "camera": "cam1", "label": "person", "score": 0.8, "top_score": 0.9, "box": _BOX,
        "frame_width": 640, "frame_height": 480, "current_zones": ["door"],
        "entered_zones": ["door"], "start_ts": TS, "frame_ts": TS,
    },
    "SoundEvent": {
        "source": "audio-classifier", "kind": "sound", "type": "end", "event_id": "a1",
        "mic": "mic1", "label": "glass_break", "top_class": "Glass", "score": 0.7,
        "peak_score": 0.9, "start_ts": TS, "end_ts": TS + 1,
    },
    "MotionScore": {
        "source": "camera-capture", "camera": "cam1", "seq": 3, "score": 0.2,
        "motion": True, "keyframe": False,
    },
    "Detections": {
        "source": "object-detector", "camera": "cam1", "seq": 3, "capture_ts": TS,
        "width": 640, "height": 480, "inference_ms": 25.0, "instance": "a",
        "objects": [{"label": "person", "score": 0.9, "box": _BOX, "track_id": 4}],
    },
    "FrameDetections": {
        "source": "object-detector", "camera": "cam1", "seq": 3, "capture_ts": TS,
        "width": 640, "height": 480, "inference_ms": 25.0, "instance": "a",
        "objects": [{"label": "person", "score": 0.9, "box": _BOX}],
        "snapshots": True, "result_rate": 2.0,
    },
    "AudioClasses": {
        "source": "audio-classifier", "mic": "mic1", "patch_index": 2, "start_ts": TS,
        "end_ts": TS + 0.96, "top": [{"index": 0, "name": "Speech", "score": 0.5}],
    },
    "Alert": {
        "source": "alert-forwarder", "type": "new", "alert_id": "al1", "sequence": 0,
        "label": "co_high", "severity": "critical", "place": "kitchen",
        "parts": [{"source": "s1", "kind": "gas", "event_id": "e1", "label": "co_high"}],
        "start_ts": TS, "end_ts": None, "summary": "co", "zones": [], "escalations": [],
    },
    "Summary": {
        "source": "gas-average", "analytic": "gas", "period_s": 60.0, "start_ts": TS,
        "end_ts": TS + 60, "values": {"n": 3, "mean": 1.5, "by": {"s1": [1, 2.5, None]}},
    },
    "QosLevels": {"source": "camera-capture", "analytic": "cam1", "levels": [_LEVEL]},
    "QosKnob": {
        "source": "bandwidth-allocator", "analytic": "cam1", "level": _LEVEL,
        "plan_id": "p1", "budget_kbps": 1000.0,
    },
    "TakenReceipt": {"source": "cloud-bridge", "message_ids": ["a.new.1", "b.end.2"]},
    "QosPlan": {
        "source": "bandwidth-allocator", "plan_id": "p1", "dry_run": False, "solver": "dp",
        "budget_kbps": 1000.0, "cost_kbps": 800.0, "total_utility": 1.0, "feasible": True,
        "solve_ms": 1.5,
        "choices": [
            {"analytic": "cam1", "level": "full", "cost_kbps": 800.0, "utility": 1.0,
             "weight": 1.0},
        ],
    },
    "PlanRequest": {"source": "operator", "request_id": "r1", "budget_kbps": 256.0},
    "UplinkUsage": {
        "source": "cloud-bridge", "budget_kbps": 256.0, "window_s": 60.0, "used_kbps": 12.0,
        "bytes_by_class": {"alert": 100}, "spool_entries": 1, "spool_bytes": 100,
        "losses": {"summary_evicted": 1}, "cloud_connected": True, "budget_used": 0.05,
        "analytic_rates_kbps": {"cam1": 800.0},
    },
    "ConfigState": {
        "source": "gas-average", "stage": "gas-average", "config_id": "abc", "generation": 3,
        "status": "rejected", "errors": [{"field": "x", "reason": "bad"}],
        "applied": {"window": 10, "thresholds": {"co": {"enter": 50.0}}, "names": ["a"]},
    },
    "Health": {
        "source": "gas-average", "stage": "gas-average", "state": "ok", "uptime_s": 3.0,
        "connected": True, "reconnects": 0,
    },
    "Metrics": {
        "source": "gas-average", "stage": "gas-average", "interval_s": 10.0,
        "counters": {"readings": 5}, "gauges": {"series": 3.0},
    },
    "DeadLetter": {
        "source": "gas-average", "stage": "gas-average", "topic": "edgegw/gw1/x",
        "reason": "bad", "payload_bytes": 3, "excerpt": "abc",
    },
    **DEPLOY_EXAMPLES,
}  # fmt: skip

JSON_MODELS: list[tuple[AnyTopicSpec, type[Envelope]]] = [
    (spec, model) for spec in REGISTRY if spec.is_json for model in spec.models
]


class _Token:
    """A bare JSON token (NaN, Infinity) or any raw JSON text."""

    def __init__(self, text: str) -> None:
        self.text = text


def _dumps(value: Any) -> str:
    if isinstance(value, _Token):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    return json.dumps(value, allow_nan=True)


_UNSAFE_STRINGS = [
    "", " ", "kitchen oven", "kitchen/oven", "#", "+", "a\n", "\x00", "$SYS", "NaN",
    "Infinity", "-Infinity", "inf", "1e999", "true", "x" * 10_000, "é☃𝄞", "\u202e",
]  # fmt: skip
_TOKENS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e400", "123456789" * 5]

numbers = st.one_of(
    st.sampled_from(_TOKENS).map(_Token),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 1e10, 1e13, -1.0, 0.0, 0.5, 2**53 + 1.0]),
    st.integers(),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30, -1, 0, 1]),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "inf", "1e999", "1e300", "12"]),
)
strings = st.one_of(st.sampled_from(_UNSAFE_STRINGS), st.text(max_size=20))
scalars = st.one_of(numbers, strings, st.booleans(), st.none())
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: _replace(document[head], rest, new)}
    copy = list(document)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def hostile_documents(draw: st.DrawFn, example: dict[str, Any]) -> str:
    document: Any = {**_COMMON, **example}
    # Mostly one field at a time: a document with many bad fields is refused
    # for the first one and tests nothing about the others.
    for _ in range(draw(st.integers(1, 2))):
        action = draw(st.sampled_from(["replace"] * 8 + ["add", "whole"]))
        paths = _paths(document)
        if action == "replace" and paths:
            value = draw(st.one_of(numbers, numbers, strings, junk))
            document = _replace(document, draw(st.sampled_from(paths)), value)
        elif action == "add" and isinstance(document, dict):
            document = {**document, draw(st.text(max_size=12)): draw(junk)}
        else:
            document = draw(junk)
    return _dumps(document)


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for item in value.values() for f in _floats(item)]
    if isinstance(value, list | tuple):
        return [f for item in value for f in _floats(item)]
    return []


def _refused_or_round_trips(spec: AnyTopicSpec, raw: bytes) -> None:
    try:
        message = spec.decode(raw)
    except ValidationError:
        return
    encoded = message.to_bytes()
    again = spec.decode(encoded)
    assert again == message, raw
    assert all(math.isfinite(f) for f in _floats(message.model_dump())), raw
    assert len(encoded) <= max(len(raw), 1) * 4 + 1024  # nothing ballooned


def test_every_json_model_has_a_valid_example() -> None:
    for spec, model in JSON_MODELS:
        example = EXAMPLES[model.__name__]
        message = spec.decode(_dumps({**_COMMON, **example}).encode())
        assert isinstance(message, model)
        assert spec.decode(message.to_bytes()) == message


@pytest.mark.parametrize(
    ("spec", "model"), JSON_MODELS, ids=[f"{s.name}-{m.__name__}" for s, m in JSON_MODELS]
)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_json_is_refused_or_round_trips(
    spec: AnyTopicSpec, model: type[Envelope], data: st.DataObject
) -> None:
    raw = data.draw(hostile_documents(EXAMPLES[model.__name__]))
    _refused_or_round_trips(spec, raw.encode())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("value", "NaN"),
        ("value", '"Infinity"'),
        ("value", "1e999"),
        ("value", "1e300"),
        ("ts", '"NaN"'),
        ("ts", "1e300"),
        ("sensor", '"kitchen oven"'),
        ("sensor", '"kitchen/oven"'),
        ("sensor", '"s1\\n"'),
        ("sensor", '"' + "s" * 10_000 + '"'),
    ],
)
def test_the_reported_mutations_of_a_reading_are_refused(field: str, value: str) -> None:
    document = {**_COMMON, **EXAMPLES["GasReading"], field: _Token(value)}
    with pytest.raises(ValidationError):
        GAS_READING.decode(_dumps(document).encode())
