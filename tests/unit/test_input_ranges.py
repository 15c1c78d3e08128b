"""Metadata in MQTT user properties is checked against the ranges of the
models it ends up in, so a stage refuses the message on receipt (a dead
letter) instead of failing later while building what it publishes."""

from __future__ import annotations

import pytest

from services.audio_classifier.chunks import parse_chunk
from services.common.messages import InvalidMessage
from services.media.pcm_chunk import BadChunkError
from services.object_detector.stage import parse_frame_properties

FRAME = {"seq": "1", "capture_ts": "1800000000.5", "width": "640", "height": "480"}
CHUNK = {"seq": "1", "capture_ts": "1800000000.5", "sample_rate": "16000", "channels": "1"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("seq", str(2**64)),
        ("capture_ts", "1e12"),
        ("capture_ts", "-1"),
        ("width", "70000"),
        ("height", "70000"),
    ],
)
def test_frame_properties_outside_the_models_ranges_are_refused(name: str, value: str) -> None:
    assert parse_frame_properties(FRAME) == (1, 1800000000.5, 640, 480)
    with pytest.raises(InvalidMessage):
        parse_frame_properties({**FRAME, name: value})


def test_a_chunk_from_the_far_future_is_refused() -> None:
    assert parse_chunk("desk", b"\x01\x00", CHUNK).capture_ts == 1800000000.5
    with pytest.raises(BadChunkError):
        parse_chunk("desk", b"\x01\x00", {**CHUNK, "capture_ts": "1e12"})
