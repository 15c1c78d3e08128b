"""Messages -> line protocol, and the writer's bounded buffer (no server)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point as ClientPoint

from schemas.audio import AudioClasses, ClassScore, SoundEvent
from schemas.gas import GasAverage, GasReading
from services.telemetry_recorder.points import Point, points_for
from services.telemetry_recorder.settings import TelemetryRecorderSettings
from services.telemetry_recorder.writer import LineBuffer
from tests.harness.events import co_high, detections
from tests.harness.reports import health_of, metrics_of

# Printable text with the characters line protocol must escape.
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(' ,="\\'),
    min_size=1,
    max_size=20,
)
# influxdb-client leaves a backslash bare, which reads back wrong before a
# special character (`a\\` then `,` becomes an escaped comma): compare with
# it on text without backslashes, and check our own escaping by a round trip.
_text_without_backslash = _text.filter(lambda s: "\\" not in s)
_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
)


@given(
    tags=st.dictionaries(_text_without_backslash, _text_without_backslash, max_size=4),
    fields=st.dictionaries(_text_without_backslash, _values, min_size=1, max_size=4),
    time_ns=st.integers(min_value=0, max_value=2**62),
)
def test_line_protocol_is_what_influxdb_client_writes(
    tags: dict[str, str], fields: dict[str, float | int | bool], time_ns: int
) -> None:
    ours = Point("m x,y", tags, fields, time_ns).to_line()
    reference = ClientPoint("m x,y")  # type: ignore[no-untyped-call]
    for tag_key, tag_value in tags.items():
        reference.tag(tag_key, tag_value)  # type: ignore[no-untyped-call]
    for field_key, field_value in fields.items():
        reference.field(field_key, field_value)  # type: ignore[no-untyped-call]
    reference.time(time_ns)  # type: ignore[no-untyped-call]
    # Field order and float spelling (0.0 or 0) may differ; what a server reads may not.
    assert _parse(ours) == _parse(reference.to_line_protocol())  # type: ignore[no-untyped-call]


@given(
    tags=st.dictionaries(_text, _text, max_size=4),
    fields=st.dictionaries(_text, _values, min_size=1, max_size=4),
)
def test_line_protocol_reads_back_as_written(
    tags: dict[str, str], fields: dict[str, float | int | bool]
) -> None:
    measurement, read_tags, read_fields, stamp = _parse(Point("m", tags, fields, 7).to_line())
    assert (measurement, read_tags, stamp) == ("m", tags, "7")
    assert read_fields.keys() == fields.keys()


_SPECIAL = frozenset(" ,=\\")


def _tokens(text: str, separators: str) -> list[tuple[str, str]]:
    """Unescaped tokens, each with the separator that ended it ('' at the end)."""
    tokens: list[tuple[str, str]] = []
    current, index = "", 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in _SPECIAL:
            current += text[index + 1]
            index += 2
            continue
        if char in separators:
            tokens.append((current, char))
            current = ""
        else:
            current += char
        index += 1
    tokens.append((current, ""))
    return tokens


def _parse(line: str) -> tuple[str, dict[str, str], dict[str, object], str]:
    """(measurement, tags, fields, time) as a server reads them (no string fields)."""
    words = _tokens(line, " ,=")
    measurement = words[0][0]
    position = 1
    tags: dict[str, str] = {}
    while words[position - 1][1] == ",":
        tags[words[position][0]] = words[position + 1][0]
        position += 2
    fields: dict[str, object] = {}
    while True:
        key, value = words[position][0], words[position + 1][0]
        fields[key] = value if value.endswith("i") or value in ("true", "false") else float(value)
        position += 2
        if words[position - 1][1] != ",":
            break
    return measurement, tags, fields, words[position][0]


def test_a_gas_reading_is_one_point_tagged_by_gateway_sensor_gas_and_stage() -> None:
    message = GasReading(source="gas-replay", sensor="kitchen", gas="co", value=12.5, ts=100.25)
    (point,) = points_for(message, "gw1")
    assert point.measurement == "gas_reading"
    assert point.tags == {"gateway": "gw1", "stage": "gas-replay", "sensor": "kitchen", "gas": "co"}
    assert point.fields == {"value": 12.5}
    assert point.time_ns == 100_250_000_000
    assert point.to_line() == (
        "gas_reading,gas=co,gateway=gw1,sensor=kitchen,stage=gas-replay value=12.5 100250000000"
    )


def test_audio_classes_are_one_point_per_class_at_the_patch_start() -> None:
    message = AudioClasses(
        source="audio-classifier",
        mic="hall",
        patch_index=4,
        start_ts=50.0,
        end_ts=50.96,
        top=[
            ClassScore(index=382, name="Smoke detector, smoke alarm", score=0.8),
            ClassScore(index=0, name="Speech", score=0.1),
        ],
    )
    points = points_for(message, "gw1")
    assert [(p.tags["class"], p.fields["rank"], p.time_ns) for p in points] == [
        ("Smoke detector, smoke alarm", 1, 50 * 10**9),
        ("Speech", 2, 50 * 10**9),
    ]
    assert "class=Smoke\\ detector\\,\\ smoke\\ alarm" in points[0].to_line()


def test_detections_count_objects_in_total_and_per_label() -> None:
    scored = [("person", 0.9), ("person", 0.6), ("dog", 0.5)]
    message = detections("door", scored, inference_ms=12.0, capture_ts=1.0, seq=3)
    total, dog, person = points_for(message, "gw1")
    assert total.fields == {"objects": 3, "inference_ms": 12.0}
    assert (person.tags["label"], person.fields) == ("person", {"count": 2, "max_score": 0.9})
    assert (dog.tags["label"], dog.fields["count"]) == ("dog", 1)


def test_events_carry_kind_label_type_and_their_source_tags() -> None:
    sound = SoundEvent(
        source="audio-classifier",
        type="end",
        event_id="e",
        mic="hall",
        label="alarm",
        top_class="Buzzer",
        score=0.3,
        peak_score=0.9,
        start_ts=10.0,
        end_ts=14.5,
    )
    (point,) = points_for(sound, "gw1")
    assert point.measurement == "event"
    assert point.tags["kind"] == "sound" and point.tags["mic"] == "hall"
    assert point.tags["class"] == "Buzzer" and point.tags["type"] == "end"
    assert point.fields["duration_s"] == pytest.approx(4.5)
    gas = co_high("g", sensor="kitchen", start_ts=1.0)
    (point,) = points_for(gas, "gw1")
    assert point.tags["sensor"] == "kitchen" and point.tags["severity"] == "critical"
    assert "duration_s" not in point.fields


def test_metrics_and_health_are_tagged_by_stage_and_drop_non_finite_gauges() -> None:
    metrics = metrics_of(
        "gas-average",
        {"readings": 5, "odd name!": 1},
        {"series": 3.0, "rate": float("nan")},
        interval_s=10,
    )
    (point,) = points_for(metrics, "gw1")
    assert point.tags["stage"] == "gas-average"
    assert point.fields == {"interval_s": 10.0, "readings": 5, "odd_name_": 1, "series": 3.0}
    health = health_of("gas-average", uptime_s=3, reconnects=0)
    (point,) = points_for(health, "gw1")
    assert point.fields["connected"] is True and point.tags["state"] == "ok"


def test_an_average_keeps_its_sample_counts_as_integers() -> None:
    average = GasAverage(
        source="gas-average",
        sensor="s",
        gas="co",
        time_window_s=10,
        time_average=1.5,
        time_samples=4,
        count_window=10,
        count_average=1.25,
        count_samples=4,
        last_value=2,
        reading_id="r",
    )
    (point,) = points_for(average, "gw1")
    assert "time_samples=4i" in point.to_line()


@given(
    capacity=st.integers(min_value=1, max_value=50),
    operations=st.lists(
        st.tuples(st.sampled_from(["add", "take", "fail"]), st.integers(0, 30)), max_size=40
    ),
)
def test_the_buffer_never_exceeds_its_bound_and_keeps_the_newest(
    capacity: int, operations: list[tuple[str, int]]
) -> None:
    buffer = LineBuffer(capacity)
    model: list[str] = []  # what a perfect "drop oldest" buffer holds
    dropped = 0
    counter = 0
    for kind, amount in operations:
        if kind == "add":
            lines = [str(counter + i) for i in range(amount)]
            counter += amount
            buffer.extend(lines)
            model.extend(lines)
        elif kind == "take":
            assert buffer.take(amount) == model[:amount]
            del model[:amount]
        else:  # a failed write: taken, then put back
            batch = buffer.take(amount)
            buffer.put_back(batch)
        excess = max(0, len(model) - capacity)
        dropped += excess
        del model[:excess]
        assert len(buffer) == len(model) <= capacity
    assert buffer.dropped == dropped
    assert buffer.take(capacity) == model


def test_settings_refuse_a_buffer_smaller_than_a_batch() -> None:
    with pytest.raises(ValueError, match="max_buffered_points"):
        TelemetryRecorderSettings(batch_size=100, max_buffered_points=10)
    with pytest.raises(ValueError, match="influx_url"):
        TelemetryRecorderSettings(influx_url="localhost:8086")
