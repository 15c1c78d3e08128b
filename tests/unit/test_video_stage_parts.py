"""The pure parts of the camera and detector stages: the latest-wins mailbox,
knob precedence, QoS levels priced from real JPEGs, frame properties."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from services.camera_capture.levels import measure_levels
from services.camera_capture.settings import CaptureConfig, KnobParams, effective_knobs
from services.common.door import InvalidMessage
from services.object_detector.mailbox import LatestFrames, PendingFrame, TooManyCameras
from services.object_detector.settings import DetectorConfig
from services.object_detector.stage import parse_frame_properties


def pending(camera: str, seq: int) -> PendingFrame:
    return PendingFrame(f"t/{camera}", camera, b"", seq, 0.0, 10, 10)


def test_newer_frame_replaces_the_waiting_one_and_counts_a_drop() -> None:
    box = LatestFrames(max_cameras=4)
    assert box.put(pending("a", 1)) is False
    assert box.put(pending("a", 2)) is True
    assert box.dropped == 1 and len(box) == 1
    taken = box.take_nowait()
    assert taken is not None and taken.seq == 2
    assert box.take_nowait() is None


def test_cameras_take_turns_and_are_bounded() -> None:
    box = LatestFrames(max_cameras=2)
    box.put(pending("a", 1))
    box.put(pending("b", 1))
    box.put(pending("a", 2))  # a busy camera goes behind the quiet one
    with pytest.raises(TooManyCameras):
        box.put(pending("c", 1))
    order = [box.take_nowait(), box.take_nowait()]
    assert [(f.camera, f.seq) for f in order if f] == [("b", 1), ("a", 2)]


def test_take_waits_for_a_frame_or_times_out() -> None:
    async def scenario() -> tuple[PendingFrame | None, PendingFrame | None]:
        box = LatestFrames(max_cameras=1)
        empty = await box.take(0.01)
        asyncio.get_running_loop().call_later(0.01, box.put, pending("a", 7))
        return empty, await box.take(5)

    empty, found = asyncio.run(scenario())
    assert empty is None and found is not None and found.seq == 7


def test_qos_knob_overrides_config_only_where_it_speaks() -> None:
    config = CaptureConfig(fps=10, max_width=1280, jpeg_quality=80, motion_enabled=True)
    knob = KnobParams(fps=4, max_width=320)
    merged = effective_knobs(config, knob)
    assert (merged.fps, merged.max_width, merged.jpeg_quality) == (4, 320, 80)
    assert merged.motion_enabled is True
    assert effective_knobs(config, None) == config


def test_unknown_knob_params_are_refused() -> None:
    with pytest.raises(ValueError, match="resolution"):
        KnobParams.model_validate({"fps": 5, "resolution": "hd"})


def test_levels_cost_grows_with_fps_size_and_quality() -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    levels = measure_levels([frame], (2, 10), (160, 320, 640), (50, 90))
    assert len(levels) == 2 * 2 * 2  # 640 folds into the source's 320
    by_name = {level.name: level for level in levels}
    assert by_name["10fps-320w-q90"].cost_kbps > by_name["10fps-320w-q50"].cost_kbps
    assert by_name["10fps-320w-q50"].cost_kbps > by_name["10fps-160w-q50"].cost_kbps
    assert by_name["10fps-160w-q50"].cost_kbps == pytest.approx(
        5 * by_name["2fps-160w-q50"].cost_kbps, rel=0.01
    )
    assert by_name["10fps-320w-q90"].utility == 1.0
    assert all(0 < level.utility < 1 for level in levels if level.name != "10fps-320w-q90")


def test_frame_properties_are_checked() -> None:
    good = {"seq": "3", "capture_ts": "12.5", "width": "640", "height": "480"}
    assert parse_frame_properties(good) == (3, 12.5, 640, 480)
    for bad in ({**good, "width": "0"}, {**good, "seq": "x"}, {"seq": "1"}):
        with pytest.raises(InvalidMessage):
            parse_frame_properties(bad)


def test_zone_outside_the_frame_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="door"):
        DetectorConfig.model_validate(
            {"zones": {"cam1": [{"name": "door", "polygon": [[0, 0], [1.5, 0], [1, 1]]}]}}
        )
