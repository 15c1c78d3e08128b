"""Home Assistant's per-camera switches (Frigate's `…/set` → retained
`…/state`) against a real stage: `motion` turns camera-capture's motion gate
on for that camera; the switch's state answers within 2 s, from the stage's
config answer. The scene is a still one drawn here (nothing moves), so with the
gate on only keyframes go out."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import orjson

from tests.harness.probe import MakeProbe, Seen
from tests.harness.stage_process import StartStage
from tests.harness.videos import write_video
from tests.integration.test_camera_motion_knob import (
    KEYFRAME_S,
    WINDOW_S,
    fps_after,
    start_still_camera,
)

ACCEPTANCE_S = 2.0


def drawn_still_video(path: Path) -> Path:
    """30 identical frames of a drawn scene (a grey yard, a dark box)."""
    frame = np.full((240, 320, 3), 120, dtype=np.uint8)
    cv2.rectangle(frame, (100, 80), (180, 200), (40, 40, 40), thickness=-1)
    return write_video(path, [frame] * 30)


def test_the_motion_switch_gates_the_camera_within_2s(
    stage: StartStage, probe: MakeProbe, root: str, gateway_id: str, tmp_path: Path
) -> None:
    ha = probe("operator")
    ha.subscribe("homeassistant/device/+/config")
    ha.subscribe(f"{root}/#", qos=0)
    watcher = probe("object-detector")  # frames are for detectors only
    watcher.subscribe(f"{root}/camera/still/frame", qos=0)
    stage("ha-discovery", EDGEGW_SETTLE_S="0.5", EDGEGW_DEBOUNCE_S="0.1")
    start_still_camera(stage, drawn_still_video(tmp_path / "still.avi"))
    device = f"homeassistant/device/edgegw_{gateway_id}_camera_still/config"
    discovered = ha.wait_for(lambda m: m.topic == device and bool(m.payload), timeout_s=20)
    switches = orjson.loads(discovered[-1].payload)["cmps"]
    motion = switches["motion"]
    frames = f"{root}/camera/still/frame"
    watcher.wait_for(lambda m: m.topic == frames, count=5, timeout_s=20)

    def state_is(topic: str, word: bytes, since: float) -> Seen:
        return ha.wait_for(lambda m: m.topic == topic and m.payload == word and m.at >= since)[0]

    sent = time.time()
    assert ha.publish(motion["cmd_t"], "ON") == 0
    answered = state_is(motion["stat_t"], b"ON", sent)
    assert answered.at - sent < ACCEPTANCE_S
    gated = fps_after(watcher, frames, sent)
    assert gated <= 1.0 / KEYFRAME_S + 1.0 / WINDOW_S  # keyframes only: the gate is on

    # The operator's retained config holds the switch, for this camera only.
    config = ha.wait_for(lambda m: m.topic == f"{root}/config/camera-capture")[-1]
    assert orjson.loads(config.payload) == {"motion_by_camera": {"still": True}}
    print(f"motion switch answered {answered.at - sent:.3f} s after; then {gated:.2f} fps")
