"""Motion gate and JPEG encoding on real media (vtest.avi, darknet photos)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from services.camera_capture.motion import MotionGate, MotionSettings
from services.media.jpeg_decode import decode_jpeg
from services.media.jpeg_encode import encode_jpeg, resize_to_fit
from services.media.jpeg_frame import CorruptJpegError, fit_size
from tests.harness.assets import MEDIA, require


def asset(name: str) -> Path:
    return require(MEDIA / name)


def read_photo(name: str) -> npt.NDArray[np.uint8]:
    frame = cv2.imread(str(asset(name)))
    assert frame is not None, f"cannot decode {name}"
    return np.asarray(frame, dtype=np.uint8)


def video_frames(count: int) -> list[npt.NDArray[np.uint8]]:
    capture = cv2.VideoCapture(str(asset("vtest.avi")))
    frames = []
    for _ in range(count):
        ok, frame = capture.read()
        assert ok
        frames.append(np.asarray(frame, dtype=np.uint8))
    capture.release()
    return frames


def test_static_scene_publishes_only_keyframes() -> None:
    still = read_photo("dog.jpg")
    rng = np.random.default_rng(1)
    gate = MotionGate(MotionSettings(keyframe_interval_s=2.0))
    decisions = []
    for i in range(50):  # 5 s at 10 fps, with sensor noise
        noise = rng.normal(0, 3, still.shape)
        noisy = np.clip(still + noise, 0, 255).astype(np.uint8)
        decisions.append(gate.observe(noisy, ts=i / 10))
    assert not any(d.motion for d in decisions)
    assert [i for i, d in enumerate(decisions) if d.publish] == [0, 20, 40]
    assert all(d.keyframe for d in decisions if d.publish)


def test_people_walking_is_motion() -> None:
    gate = MotionGate()
    decisions = [gate.observe(frame, ts=i / 10) for i, frame in enumerate(video_frames(40))]
    moving = [d for d in decisions[1:] if d.motion]
    assert len(moving) >= 0.9 * 39
    assert all(0.0 < d.score < 0.2 for d in moving)  # a few people, not the whole image


def test_object_entering_a_still_scene_is_seen() -> None:
    scene = read_photo("dog.jpg")
    dog = read_photo("person.jpg")[263:345, 65:200]  # the dog, ~135x82 px
    gate = MotionGate()
    for i in range(5):
        gate.observe(scene, ts=i / 10)
    entered = scene.copy()
    entered[450:532, 500:635] = dog
    decision = gate.observe(entered, ts=0.5)
    assert decision.motion and decision.publish and not decision.keyframe


def test_sensitivity_orders_decisions() -> None:
    frames = video_frames(30)
    counts = []
    for sensitivity in (0.0, 0.5, 1.0):
        gate = MotionGate(MotionSettings(sensitivity=sensitivity, keyframe_interval_s=100))
        counts.append(sum(gate.observe(f, ts=i / 10).motion for i, f in enumerate(frames)))
    assert counts[0] <= counts[1] <= counts[2]
    assert MotionSettings(sensitivity=0.0).min_score > MotionSettings(sensitivity=1.0).min_score


def test_disabled_gate_publishes_everything_and_reconfigures_live() -> None:
    still = read_photo("eagle.jpg")
    gate = MotionGate(MotionSettings(enabled=False))
    assert all(gate.observe(still, ts=i).publish for i in range(3))
    gate.reconfigure(replace(gate.settings, enabled=True, keyframe_interval_s=60))
    assert gate.observe(still, ts=3).publish is False  # last publish was at ts=2


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="sensitivity"):
        MotionSettings(sensitivity=1.5)


def test_fit_size_keeps_aspect_and_never_upscales() -> None:
    assert fit_size(768, 576, 384, 384) == (384, 288)
    assert fit_size(768, 576, 1920, 1080) == (768, 576)
    assert fit_size(640, 424, 640, 212) == (320, 212)


def test_jpeg_round_trip_and_quality_sets_size() -> None:
    frame = resize_to_fit(read_photo("person.jpg"), 320, 320)
    assert frame.shape == (212, 320, 3)
    small, large = encode_jpeg(frame, 30), encode_jpeg(frame, 90)
    assert len(small) < len(large)
    decoded = decode_jpeg(large)[:, :, ::-1]  # decoded RGB; the camera's frame is BGR
    assert decoded.shape == frame.shape
    assert float(np.mean(np.abs(decoded.astype(int) - frame.astype(int)))) < 5


def test_corrupt_jpegs_raise_a_clear_error() -> None:
    good = asset("dog.jpg").read_bytes()
    for bad, reason in (
        (b"", "not a JPEG"),
        (b"GIF89a" + good[6:], "not a JPEG"),
        (good[: len(good) // 2], "truncated"),
    ):
        with pytest.raises(CorruptJpegError, match=reason):
            decode_jpeg(bad)
    garbled = good[:2] + bytes(200) + good[-2:]
    with pytest.raises(CorruptJpegError):
        decode_jpeg(garbled)
