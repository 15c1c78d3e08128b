"""The camera's motion gate obeys its `qos/camera.<cam>` knob within 2 s.

camera-capture plays a still scene (a vtest frame written 30 times into an
MJPG file: nothing moves, only JPEG noise). Gate off: every frame goes out
at the knob's fps. A knob with `motion_enabled` turns the gate on: only
keyframes go out. The knob cleared: the config (gate off) rules again.
Frames are counted by a probe logged in as object-detector.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import orjson

from tests.harness.probe import MakeProbe, Probe
from tests.harness.stage_process import StageProcess, StartStage
from tests.harness.videos import write_video
from tests.integration.video_helpers import VIDEO

ACCEPTANCE_S = 2.0
WINDOW_S = 3.0
FPS = 8.0
KEYFRAME_S = 2.0


def still_video(path: Path) -> Path:
    capture = cv2.VideoCapture(str(VIDEO))
    ok, frame = capture.read()
    capture.release()
    assert ok, f"cannot read {VIDEO}"
    return write_video(path, [np.ascontiguousarray(frame)] * 30)


def start_still_camera(stage: StartStage, video: Path) -> StageProcess:
    """camera-capture `still` on `video`, at FPS with a keyframe every KEYFRAME_S."""
    return stage(
        "camera-capture",
        EDGEGW_CAMERA="still",
        EDGEGW_SOURCE=str(video),
        EDGEGW_FPS=str(FPS),
        EDGEGW_MAX_WIDTH="320",
        EDGEGW_KEYFRAME_INTERVAL_S=str(KEYFRAME_S),
    )


def knob(params: dict[str, object]) -> bytes:
    level = {"name": "test", "params": params, "cost_kbps": 100.0, "utility": 0.5}
    return orjson.dumps(
        {"source": "bandwidth-allocator", "analytic": "camera.still", "level": level}
    )


def fps_after(watcher: Probe, topic: str, change: float) -> float:
    start = change + ACCEPTANCE_S
    time.sleep(max(0.0, start + WINDOW_S - time.time()))
    frames = watcher.received(lambda m: m.topic == topic and start <= m.at < start + WINDOW_S)
    return len(frames) / WINDOW_S


def test_the_motion_gate_follows_the_knob(
    stage: StartStage, probe: MakeProbe, root: str, tmp_path: Path
) -> None:
    watcher = probe("object-detector")
    topic = f"{root}/camera/still/frame"
    watcher.subscribe(topic, qos=0)
    allocator = probe("bandwidth-allocator")
    start_still_camera(stage, still_video(tmp_path / "still.avi"))
    watcher.wait_for(lambda m: m.topic == topic, count=5, timeout_s=20)
    ungated = fps_after(watcher, topic, time.time() - ACCEPTANCE_S)

    knob_topic = f"{root}/qos/camera.still"
    gated_at = time.time()
    assert allocator.publish(knob_topic, knob({"motion_enabled": True}), retain=True) == 0
    gated = fps_after(watcher, topic, gated_at)

    cleared_at = time.time()
    assert allocator.publish(knob_topic, b"", retain=True) == 0
    back = watcher.wait_for(lambda m: m.topic == topic and m.at >= cleared_at + 0.5, count=3)
    restored = fps_after(watcher, topic, cleared_at)
    print(
        f"still scene: {ungated:.1f} fps ungated, {gated:.2f} fps gated by the knob, "
        f"{restored:.1f} fps once cleared (3rd frame after {back[-1].at - cleared_at:.2f} s)"
    )
    assert ungated >= 0.8 * FPS
    # Keyframes only: one every KEYFRAME_S, nothing else moves.
    assert gated <= 1.0 / KEYFRAME_S + 1.0 / WINDOW_S
    assert restored >= 0.8 * FPS
