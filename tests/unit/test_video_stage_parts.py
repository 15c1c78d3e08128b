"""The pure parts of the camera and detector stages: the latest-wins mailbox,
knob precedence, QoS levels priced from real JPEGs, frame properties."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from schemas.analytics import CameraKnobParams as KnobParams
from schemas.analytics import DetectorKnobParams
from schemas.topics import FRAME_DETECTIONS
from schemas.video import Box, FoundObject, FrameDetections
from services.camera_capture.levels import measure_levels
from services.camera_capture.settings import CaptureConfig, effective_knobs
from services.common.door import InvalidMessage
from services.media.video_profile import load_video_profile
from services.object_detector.levels import (
    CameraUsage,
    DetectorUtilityShares,
    price_levels,
    repricing_needed,
)
from services.object_detector.mailbox import LatestFrames, PendingFrame, TooManyCameras
from services.object_detector.pipeline_pace import PreparePace
from services.object_detector.settings import DetectorConfig, effective_config
from services.object_detector.stage import parse_frame_properties
from services.object_tracker.settings import TrackerConfig


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


def test_the_frames_a_newer_one_replaced_go_with_it_for_the_tracker() -> None:
    box = LatestFrames(max_cameras=4)
    for seq in (1, 2, 3):
        box.put(pending("a", seq))
    box.put(pending("b", 9))
    taken = box.take_nowait()
    assert taken is not None and (taken.seq, taken.replaced) == (3, [1, 2])
    box.put(pending("a", 4))
    later = [box.take_nowait(), box.take_nowait()]
    assert [(f.seq, f.replaced) for f in later if f] == [(9, []), (4, [])]


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
    profile = load_video_profile()
    levels = measure_levels([frame], (2, 10), (160, 320, 640), (50, 80, 90), profile)
    # 160 and quality 90 are not profiled; 640 folds into the source's 320.
    assert len(levels) == 2 * 1 * 2
    by_name = {level.name: level for level in levels}
    assert by_name["10fps-320w-q80"].cost_kbps > by_name["10fps-320w-q50"].cost_kbps
    assert by_name["10fps-320w-q50"].cost_kbps == pytest.approx(
        5 * by_name["2fps-320w-q50"].cost_kbps, rel=0.01
    )
    # The folded width takes the utility profiled for the largest knob value.
    assert by_name["10fps-320w-q80"].utility == profile.camera_utility(10, 640, 80)


def test_video_profile_utilities_come_from_measurement() -> None:
    profile = load_video_profile()
    best = max(profile.camera, key=lambda row: row.utility)
    assert (best.fps, best.jpeg_quality) == (10, 80)
    for camera_row in profile.camera:
        assert camera_row.utility == pytest.approx(
            camera_row.event_recall * camera_row.mean_iou, abs=1e-3
        )
    # More pixels at the same fps and quality never localise worse (beyond noise).
    for fps in (2.0, 5.0, 10.0):
        ious = [
            r.mean_iou
            for r in sorted(profile.camera, key=lambda r: r.max_width)
            if r.fps == fps and r.jpeg_quality == 80
        ]
        assert ious == sorted(ious)
    snapshot_gain = {row.result_rate: row.utility for row in profile.detector if row.snapshots}
    for row in profile.detector:
        if not row.snapshots:
            assert snapshot_gain[row.result_rate] > row.utility


def test_frame_properties_are_checked() -> None:
    good = {"seq": "3", "capture_ts": "12.5", "width": "640", "height": "480"}
    assert parse_frame_properties(good) == (3, 12.5, 640, 480)
    for bad in ({**good, "width": "0"}, {**good, "seq": "x"}, {"seq": "1"}):
        with pytest.raises(InvalidMessage):
            parse_frame_properties(bad)


def test_zone_outside_the_frame_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="door"):
        TrackerConfig.model_validate(
            {"zones": {"cam1": [{"name": "door", "polygon": [[0, 0], [1.5, 0], [1, 1]]}]}}
        )


def test_detector_knob_overrides_config_and_clears_back() -> None:
    config = DetectorConfig(result_rate=0.0, snapshots=True)
    knob = DetectorKnobParams(result_rate=1.0, snapshots=False)
    merged = effective_config(config, knob)
    assert (merged.result_rate, merged.snapshots) == (1.0, False)
    assert effective_config(config, DetectorKnobParams(result_rate=2.0)).snapshots is True
    assert effective_config(config, None) == config
    with pytest.raises(ValueError, match="result_rate"):
        DetectorKnobParams.model_validate({"result_rate": 0})


def test_detector_levels_are_priced_from_what_the_camera_produced() -> None:
    profile = load_video_profile()
    usage = CameraUsage()
    for seq in range(20):
        usage.observe_frame(100.0 + seq / 10, 1000)
    for kind in ("new", "update", "end", "new"):
        usage.observe_event(kind, 500)
    usage.observe_snapshot(4000)
    levels = {level.name: level for level in price_levels(usage, profile, DetectorUtilityShares())}
    assert len(levels) == len(profile.detector)
    seconds = 1.9
    events_kbps = 4 * 500 * 8 / seconds / 1000
    assert levels["1hz-results"].cost_kbps == pytest.approx(8 + events_kbps, abs=0.01)
    # Snapshots: 4000-byte crops at 2 new events in 1.9 s.
    snapshot_kbps = 4000 * 8 * 2 / seconds / 1000
    assert levels["1hz-snapshots"].cost_kbps == pytest.approx(
        8 + events_kbps + snapshot_kbps, abs=0.01
    )
    assert levels["10hz-results"].cost_kbps == pytest.approx(80 + events_kbps, abs=0.01)
    assert levels["10hz-snapshots"].utility > levels["10hz-results"].utility
    priced = list(levels.values())
    assert not repricing_needed(priced, priced)
    usage.observe_snapshot(40_000)  # crops got much bigger
    assert repricing_needed(priced, price_levels(usage, profile, DetectorUtilityShares()))


def test_the_operators_shares_rescore_the_detector_levels() -> None:
    profile = load_video_profile()
    usage = CameraUsage()
    usage.observe_frame(1.0, 1000)
    usage.observe_frame(2.0, 1000)
    default = price_levels(usage, profile, DetectorUtilityShares())
    # With the default shares the stage publishes what the profile measured.
    assert [level.utility for level in default] == [row.utility for row in profile.detector]
    pictures = DetectorUtilityShares(events=0.2, results=0.0, snapshots=0.8)
    rescored = {level.name: level for level in price_levels(usage, profile, pictures)}
    row = next(r for r in profile.detector if r.snapshots and r.result_rate == 1.0)
    assert rescored["1hz-snapshots"].utility == pytest.approx(0.2 + 0.8 * row.snapshot_share, 1e-3)
    assert rescored["10hz-results"].utility == pytest.approx(0.2)  # live results now worth 0
    assert repricing_needed(default, list(rescored.values()))
    with pytest.raises(ValueError, match="at least one"):
        DetectorUtilityShares(events=0, results=0, snapshots=0)


def test_detector_levels_fall_back_to_the_profile_before_events() -> None:
    profile = load_video_profile()
    usage = CameraUsage()
    usage.observe_frame(1.0, 1000)
    usage.observe_frame(2.0, 1000)
    levels = {level.name: level for level in price_levels(usage, profile, DetectorUtilityShares())}
    costs = profile.detector_costs
    expected = costs.snapshot_bytes * costs.new_events_per_s * 8 / 1000
    gap = levels["2hz-snapshots"].cost_kbps - levels["2hz-results"].cost_kbps
    assert gap == pytest.approx(expected, abs=0.02)


def test_a_crop_rides_in_its_detections_message_as_base64_and_comes_back_whole() -> None:
    crop = b"\xff\xd8" + bytes(range(256)) + b"\xff\xd9"
    found = FoundObject(label="person", score=0.9, box=Box(x1=1, y1=2, x2=30, y2=40), crop=crop)
    message = FrameDetections(
        source="object-detector", camera="cam1", seq=7, capture_ts=1_800_000_000.0,
        width=640, height=480, objects=[found], inference_ms=9.4,
    )  # fmt: skip
    raw = message.to_bytes()
    assert base64.urlsafe_b64encode(crop) in raw  # JSON-safe on the wire
    assert FRAME_DETECTIONS.decode(raw).objects[0].crop == crop


def test_the_next_frame_is_prepared_just_before_the_model_is_done() -> None:
    pace = PreparePace()
    assert pace.wait_before_prepare_s(now=0.0) == 0.0  # nothing measured: no time to lose
    pace.prepared(0.004)
    pace.inference_started(now=10.0)
    assert pace.wait_before_prepare_s(now=10.0) == 0.0  # inference not measured yet
    pace.inferred(0.030)
    pace.inference_started(now=20.0)
    # 30 ms of model, 4 ms of decode: start the next frame ~22 ms in (with a margin).
    wait = pace.wait_before_prepare_s(now=20.0)
    assert 0.015 < wait < 0.026
    assert pace.wait_before_prepare_s(now=20.0 + wait) == 0.0
    pace.inferred(0.030)
    assert pace.wait_before_prepare_s(now=21.0) == 0.0  # the model is idle: take it now
