"""Frames fit what the broker takes (issue 13.5): the frame and snapshot
limits leave room for topic and properties under the broker's packet limit,
a PUBLISH is measured as paho packs it, and camera-capture lowers quality,
then size, until a frame fits, and says so."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from schemas.topic_spec import KIB
from schemas.topics import FRAME, REGISTRY, SNAPSHOT
from services.camera_capture.jpeg_fit import MIN_QUALITY, JpegFitter
from services.camera_capture.settings import CaptureConfig
from services.camera_capture.stage import frame_bounds
from services.common.packet_size import max_payload_bytes, publish_packet_bytes
from services.media.jpeg_encode import encode_jpeg
from services.media.jpeg_frame import (
    MAX_FRAME_HEIGHT,
    MAX_FRAME_WIDTH,
    Frame,
    jpeg_dimensions,
)

REPO = Path(__file__).resolve().parents[2]
ROOM_FOR_TOPIC_AND_PROPERTIES = 64 * KIB


def broker_max_packet_size() -> int:
    config = (REPO / "broker" / "mosquitto.conf").read_text()
    found = re.search(r"^max_packet_size\s+(\d+)", config, re.MULTILINE)
    assert found, "broker/mosquitto.conf sets no max_packet_size"
    return int(found.group(1))


def test_every_topic_limit_leaves_room_under_the_brokers_packet_limit() -> None:
    broker = broker_max_packet_size()
    for spec in REGISTRY:
        assert spec.max_bytes <= broker - ROOM_FOR_TOPIC_AND_PROPERTIES, spec.name
    assert FRAME.max_bytes == SNAPSHOT.max_bytes == 4 * 1024 * KIB - 64 * KIB


def test_packet_size_is_paho_s_layout() -> None:
    topic = "edgegw/gw1/camera/cam1/frame"
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.UserProperty = [("seq", "12"), ("width", "3840")]
    packed = properties.pack()  # type: ignore[no-untyped-call]
    for payload, qos in ((0, 0), (100, 1), (200_000, 0), (4_000_000, 1)):
        variable = 2 + len(topic) + (2 if qos else 0) + len(packed) + payload
        length_bytes = 1 if variable < 128 else 2 if variable < 16384 else 3
        length_bytes += variable >= 2_097_152
        assert publish_packet_bytes(topic, payload, qos, properties) == 1 + length_bytes + variable
    # Without properties paho still writes their (zero) length byte.
    assert publish_packet_bytes(topic, 10, 0, None) == 1 + 1 + 2 + len(topic) + 1 + 10


def test_the_largest_payload_fills_the_packet_limit_exactly() -> None:
    for limit in (100, 130, 16_400, 2_097_160, 4 * 1024 * KIB):
        payload = max_payload_bytes("a/b", 1, None, limit)
        assert publish_packet_bytes("a/b", payload, 1, None) <= limit
        assert publish_packet_bytes("a/b", payload + 1, 1, None) > limit


def noise(height: int, width: int, seed: int = 0) -> Frame:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_a_4k_high_entropy_frame_at_q100_is_lowered_to_fit() -> None:
    frame = noise(2160, 3840)
    limit = FRAME.max_bytes - 1024
    assert len(encode_jpeg(frame, 100)) > 3 * limit  # what the camera sent before
    fitter = JpegFitter()
    first = fitter.encode(frame, 100, limit)
    assert len(first.jpeg) <= limit and first.lowered
    assert MIN_QUALITY <= first.quality < 100
    assert jpeg_dimensions(first.jpeg) == (first.width, first.height) == (3840, 2160)
    # The next frame starts from what fitted: same result.
    again = fitter.encode(frame, 100, limit)
    assert (again.quality, again.width) == (first.quality, first.width)


def test_below_the_lowest_quality_the_frame_shrinks() -> None:
    frame = noise(480, 640)
    limit = len(encode_jpeg(frame, MIN_QUALITY)) // 3
    fitted = JpegFitter().encode(frame, 90, limit)
    assert len(fitted.jpeg) <= limit
    assert fitted.quality == MIN_QUALITY and fitted.width < 640 and fitted.lowered
    assert abs(fitted.width / fitted.height - 640 / 480) < 0.01


def test_a_frame_that_fits_is_sent_as_asked_and_quality_comes_back() -> None:
    fitter = JpegFitter()
    busy, calm = noise(480, 640), np.full((480, 640, 3), 90, np.uint8)
    limit = len(encode_jpeg(busy, 60))
    assert fitter.encode(busy, 90, limit).quality < 90
    qualities = [fitter.encode(calm, 90, limit).quality for _ in range(6)]
    assert qualities[-1] == 90
    assert qualities == sorted(qualities)
    settled = fitter.encode(calm, 90, limit)
    assert not settled.lowered and (settled.width, settled.height) == (640, 480)


def test_camera_frames_never_exceed_what_receivers_accept() -> None:
    widest = CaptureConfig.model_construct(max_width=100_000, max_height=100_000)
    assert frame_bounds(widest) == (MAX_FRAME_WIDTH, MAX_FRAME_HEIGHT)
    assert frame_bounds(CaptureConfig()) == (1280, 720)
