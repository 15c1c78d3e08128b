"""The tracker and the event builder: rules on hand-made boxes, then the real
model on the first 150 frames of vtest.avi (Debian's opencv-doc)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from services.inference import load_model
from services.object_detector.ssd import Detection, DetectionBox, SSDDetector, load_labels
from services.object_tracker.events import ObjectEventBuilder, TrackedObjectChange
from services.object_tracker.tracker import IouTracker, TrackerStep
from services.object_tracker.zones import Zone

CACHE = Path(__file__).resolve().parents[2] / ".cache"
MODEL = CACHE / "models" / "mobilenet_ssd_v2_coco_quant_postprocess.tflite"
LABELS = CACHE / "models" / "coco_labels.txt"
VIDEO = CACHE / "media" / "vtest.avi"


def asset(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"missing test asset {path}: run `make assets` (tools/fetch_video_assets.sh)")
    return path


def person(x: float, y: float, score: float = 0.9, w: float = 40, h: float = 100) -> Detection:
    return Detection("person", score, DetectionBox(x, y, x + w, y + h))


def test_track_is_confirmed_after_min_hits_and_keeps_its_id() -> None:
    tracker = IouTracker(min_hits=3, max_misses=2)
    steps = [tracker.update([person(100 + 5 * i, 100)], ts=i * 0.1) for i in range(6)]
    assert [len(s.active) for s in steps] == [0, 0, 1, 1, 1, 1]
    assert len({s.active[0].track_id for s in steps[2:]}) == 1


def test_track_survives_max_misses_then_ends_once() -> None:
    tracker = IouTracker(min_hits=2, max_misses=2)
    for i in range(3):
        tracker.update([person(100, 100)], ts=i)
    gaps = [tracker.update([], ts=3 + i) for i in range(4)]
    assert [len(s.active) for s in gaps] == [1, 1, 0, 0]
    assert [len(s.ended) for s in gaps] == [0, 0, 1, 0]
    assert gaps[0].active[0].matched is False


def test_occluded_object_keeps_its_id_when_it_comes_back() -> None:
    tracker = IouTracker(min_hits=2, max_misses=5)
    for i in range(4):
        first = tracker.update([person(100 + 10 * i, 100)], ts=i)
    tracker.update([], ts=4)
    tracker.update([], ts=5)
    back = tracker.update([person(160, 100)], ts=6)  # moved on while hidden
    assert [t.track_id for t in back.active] == [first.active[0].track_id]
    assert back.active[0].matched


def test_one_frame_false_positive_never_becomes_a_track() -> None:
    tracker = IouTracker(min_hits=3)
    steps = [tracker.update([person(300, 300)] if i == 2 else [], ts=i) for i in range(6)]
    assert all(not s.active and not s.ended for s in steps)


def test_two_people_crossing_keep_distinct_ids() -> None:
    tracker = IouTracker(min_hits=2)
    ids: dict[str, set[int]] = {"left": set(), "right": set()}
    for i in range(12):
        left, right = person(100 + 20 * i, 100), person(400 - 20 * i, 300)
        step = tracker.update([left, right], ts=i)
        for track in step.active:
            ids["left" if track.box.y1 < 200 else "right"].add(track.track_id)
    assert len(ids["left"]) == 1 and len(ids["right"]) == 1
    assert ids["left"] != ids["right"]


def test_labels_never_match_each_other() -> None:
    tracker = IouTracker(min_hits=1)
    tracker.update([person(100, 100)], ts=0)
    step = tracker.update([Detection("dog", 0.9, DetectionBox(100, 100, 140, 200))], ts=1)
    assert {t.label for t in step.active} == {"person"}  # the person coasts
    assert tracker.update([Detection("dog", 0.9, DetectionBox(100, 100, 140, 200))], ts=2).active


def test_tracks_are_bounded() -> None:
    tracker = IouTracker(min_hits=1, max_tracks=10)
    crowd = [person(50 * i, 50 * (i % 3) * 3, w=30, h=30) for i in range(40)]
    assert len(tracker.update(crowd, ts=0).active) == 10


def run_events(
    builder: ObjectEventBuilder, tracker: IouTracker, frames: list[list[Detection]]
) -> list[TrackedObjectChange]:
    events: list[TrackedObjectChange] = []
    for i, detections in enumerate(frames):
        events += builder.update(tracker.update(detections, ts=i), i, 1000, 1000)
    events += builder.update(TrackerStep(active=(), ended=tracker.flush()), len(frames), 1000, 1000)
    return events


def test_events_new_once_update_on_material_change_end_once() -> None:
    builder = ObjectEventBuilder("cam1", labels=frozenset({"person"}), min_score=0.6)
    tracker = IouTracker(min_hits=2)
    scores = [0.5, 0.55, 0.7, 0.71, 0.72, 0.9, 0.9, 0.9]
    frames = [[person(100 + 2 * i, 100, score=s)] for i, s in enumerate(scores)]
    events = run_events(builder, tracker, frames)
    assert [e.type for e in events] == ["new", "update", "end"]
    assert len({e.id for e in events}) == 1
    assert [e.sequence for e in events] == [0, 1, 2]
    assert [e.top_score for e in events] == [0.7, 0.9, 0.9]
    assert events[-1].end_time == len(frames) - 1 and events[0].end_time is None
    assert events[0].start_time == 0


def test_uninteresting_objects_make_no_events() -> None:
    builder = ObjectEventBuilder("cam1", labels=frozenset({"person"}), min_score=0.6)
    dog = [[Detection("dog", 0.95, DetectionBox(10, 10, 60, 60))] for _ in range(5)]
    weak = [[person(300, 300, score=0.55)] for _ in range(5)]
    assert run_events(builder, IouTracker(min_hits=2), dog) == []
    assert run_events(builder, IouTracker(min_hits=2), weak) == []


def test_zone_entry_is_an_update_after_inertia() -> None:
    door = Zone("door", ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)))
    builder = ObjectEventBuilder("cam1", zones=[door], zone_inertia=2)
    tracker = IouTracker(min_hits=1)
    # Walks right: bottom-centre crosses x = 500 px (0.5 of 1000) at frame 5.
    frames = [[person(300 + 40 * i, 100, w=40)] for i in range(10)]
    events = run_events(builder, tracker, frames)
    assert [e.type for e in events] == ["new", "update", "end"]
    entered = events[1]
    assert entered.current_zones == frozenset({"door"}) and entered.entered_zones == ("door",)
    assert entered.frame_time == 6  # in the zone from frame 5, counted on its 2nd frame
    assert events[-1].entered_zones == ("door",)


def test_real_video_gives_stable_person_tracks() -> None:
    """Distinct person tracks on vtest.avi frames 0-149 (15 s at 10 fps).

    Established by looking at every 10th frame (and crops of the far path):
    9 different people are visible in this segment - 3 at the start, a pair
    arriving from the right at ~frame 15, one more at ~40 (these 6 mill around
    the sign post in the middle), one small figure on the far path along the
    lawn from ~frame 78, one in a white jacket from ~118 and one in a striped
    jumper from ~133.

    Measured with the first tracker defaults: 20 tracks; with the tuned ones
    (IouTracker's docstring): 13, on raw frames and on JPEG q80 frames alike.
    Tracking by detection alone still fragments when the group walks behind
    the sign and when two people side by side merge into one box (~1.4
    tracks per person here). The tolerance says that: at least 8 of the 9
    are tracked, and no more than 15 tracks (1.67x the people). Independently,
    tracks that stay in view keep their id.
    """
    detector = SSDDetector(load_model(asset(MODEL), threads=2), load_labels(asset(LABELS)))
    capture = cv2.VideoCapture(str(asset(VIDEO)))
    tracker = IouTracker()
    lifetimes: dict[int, list[int]] = {}
    try:
        for frame_number in range(150):
            ok, frame = capture.read()
            assert ok, f"vtest.avi ended at frame {frame_number}"
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  # the detector's order
            people = [
                d
                for d in detector.detect(np.asarray(rgb, np.uint8), min_score=0.5)
                if d.label == "person"
            ]
            for track in tracker.update(people, ts=frame_number / 10).active:
                span = lifetimes.setdefault(track.track_id, [frame_number, frame_number])
                span[1] = frame_number
    finally:
        capture.release()
    people_seen = 9
    assert people_seen - 1 <= len(lifetimes) <= 15, lifetimes
    long_lived = [span for span in lifetimes.values() if span[1] - span[0] >= 80]
    # The man on the left (frames 0-149) and at least two of the group keep one id.
    assert len(long_lived) >= 3, lifetimes
