"""object-tracker's reorder window: detections of detector replicas come back
in any order and with gaps; the tracker must see them in frame order."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import pytest

from schemas.video import Detection, DetectionBox
from services.object_tracker.frame_order import FrameOrder
from services.object_tracker.tracker import IouTracker, TrackerStep

FPS = 10.0


def walker(seq: int) -> list[Detection]:
    """One person walking right, 12 px per frame, and one standing still."""
    x = 20.0 + 12.0 * seq
    return [
        Detection("person", 0.9, DetectionBox(x, 100, x + 40, 200)),
        Detection("person", 0.8, DetectionBox(500, 300, 540, 400)),
    ]


@dataclass
class Tracked:
    seen: list[int] = field(default_factory=list)  # seqs, in the order the tracker got them
    ids: set[int] = field(default_factory=set)
    walker_x: list[float] = field(default_factory=list)  # the walker's track, frame by frame

    @property
    def walker_moves_forward(self) -> bool:
        return all(b > a for a, b in itertools.pairwise(self.walker_x))


def run_tracker(seqs_in_arrival_order: list[int], order: FrameOrder[int] | None) -> Tracked:
    """Feed frames' detections through `order` (None: straight) into a tracker.
    Every arrival is 10 ms after the previous one."""
    tracker = IouTracker()
    out = Tracked()

    def track(seq: int) -> None:
        step: TrackerStep = tracker.update(walker(seq), seq / FPS)
        out.seen.append(seq)
        out.ids.update(t.track_id for t in step.active)
        out.walker_x.extend(t.box.x1 for t in step.active if t.matched and t.box.y1 == 100)

    for n, seq in enumerate(seqs_in_arrival_order):
        if order is None:
            track(seq)
            continue
        for released in order.push(seq, seq / FPS, seq, now=n * 0.01):
            track(released.item)
    if order is not None:
        for released in order.flush():
            track(released.item)
    return out


def shuffled_within(count: int, window: int, seed: int) -> list[int]:
    """0..count-1, each moved by less than `window` places."""
    rng = random.Random(seed)
    keyed = sorted(range(count), key=lambda seq: seq + rng.uniform(0, window - 1))
    return keyed


@pytest.mark.parametrize("seed", range(5))
def test_reordered_detections_come_out_in_order_and_keep_the_ids(seed: int) -> None:
    arrivals = shuffled_within(80, window=4, seed=seed)
    assert arrivals != sorted(arrivals)
    order: FrameOrder[int] = FrameOrder(max_frames=8, max_wait_s=10.0)
    tracked = run_tracker(arrivals, order)
    assert tracked.seen == list(range(80))
    assert (order.late, order.skipped) == (0, 0)
    assert tracked.ids == {1, 2}
    assert tracked.walker_moves_forward


def test_without_the_window_the_same_arrivals_send_the_walker_backwards() -> None:
    """The control: a tracker fed in arrival order sees the walker jump back
    and forth (so the test above can fail)."""
    tracked = run_tracker(shuffled_within(80, window=4, seed=0), None)
    assert not tracked.walker_moves_forward


def test_missing_frames_are_skipped_once_the_window_is_full() -> None:
    lost = {5, 6, 30, 31, 32, 50}
    arrivals = [seq for seq in range(80) if seq not in lost]
    order: FrameOrder[int] = FrameOrder(max_frames=4, max_wait_s=10.0)
    tracked = run_tracker(arrivals, order)
    assert tracked.seen == arrivals
    assert order.skipped == len(lost) and order.late == 0
    assert tracked.ids == {1, 2}
    assert tracked.walker_moves_forward


def test_the_first_frames_wait_for_their_predecessors_from_other_replicas() -> None:
    order: FrameOrder[str] = FrameOrder(max_frames=8, max_wait_s=0.5)
    assert order.push(1, 0.1, "b", now=0.0) == []
    assert order.push(0, 0.0, "a", now=0.05) == []  # where a camera starts is unknown
    assert [m.item for m in order.due(now=0.5)] == ["a", "b"]
    assert [m.item for m in order.push(2, 0.2, "c", now=0.6)] == ["c"]  # no wait now
    assert (order.late, order.skipped) == (0, 0)


def test_a_gap_is_given_up_on_after_the_wait_and_its_frame_is_then_late() -> None:
    order: FrameOrder[str] = FrameOrder(max_frames=8, max_wait_s=0.5)
    assert order.push(0, 0.0, "a", now=0.0) == []  # the first: others may come before it
    assert [m.seq for m in order.due(now=0.5)] == [0]
    assert order.push(2, 0.2, "c", now=0.1) == []  # 1 is missing: wait
    assert order.push(3, 0.3, "d", now=0.2) == []
    assert order.due(now=0.55) == []  # 0.45 s since the oldest held: still waiting
    assert [m.seq for m in order.due(now=0.6)] == [2, 3]
    assert order.skipped == 1
    # Frame 1 arrives after the tracker moved past it: counted and dropped.
    assert order.push(1, 0.1, "b", now=0.7) == []
    assert order.late == 1
    assert [m.seq for m in order.push(4, 0.4, "e", now=0.8)] == [4]


def test_a_duplicate_is_dropped_and_counted() -> None:
    order: FrameOrder[str] = FrameOrder(max_frames=8, max_wait_s=0.5)
    order.push(0, 0.0, "a", now=0.0)
    assert [m.item for m in order.due(now=0.5)] == ["a"]
    assert order.push(2, 0.2, "c", now=0.6) == []
    assert order.push(2, 0.2, "c again", now=0.6) == []
    assert order.push(0, 0.0, "a again", now=0.6) == []
    assert order.late == 2
    assert [m.item for m in order.push(1, 0.1, "b", now=0.7)] == ["b", "c"]


def test_a_restarted_camera_numbering_from_zero_starts_afresh() -> None:
    order: FrameOrder[str] = FrameOrder(max_frames=4, max_wait_s=0.5)
    for seq in range(100, 105):
        order.push(seq, 100.0 + seq / FPS, "old", now=0.0)
    assert len(order) < 4
    # seq 0 again, but captured later: a new run of the camera, not a late frame.
    released = order.push(0, 200.0, "new", now=1.0)
    assert [m.item for m in released] == ["old"] * len(released)
    assert [m.seq for m in order.due(now=1.5)] == [0]
    assert [m.seq for m in order.push(1, 200.1, "new", now=1.6)] == [1]
    assert order.restarts == 1 and order.late == 0


def test_the_window_holds_at_most_its_size() -> None:
    order: FrameOrder[int] = FrameOrder(max_frames=3, max_wait_s=60.0)
    order.push(0, 0.0, 0, now=0.0)
    for seq in range(2, 50):
        order.push(seq, seq / FPS, seq, now=0.0)
        assert len(order) <= 3


def test_frames_a_detector_says_it_dropped_are_not_waited_for() -> None:
    order: FrameOrder[str] = FrameOrder(max_frames=8, max_wait_s=0.5)
    order.push(0, 0.0, "a", now=0.0)
    assert [m.item for m in order.due(now=0.5)] == ["a"]
    # Latest wins dropped 1 and 2 in one replica; 3 comes with that news.
    released = order.gone([1, 2], now=0.6) + order.push(3, 0.3, "d", now=0.6)
    assert [m.item for m in released] == ["d"]
    # A drop announced after its successor arrived still unblocks it.
    assert order.push(5, 0.5, "f", now=0.7) == []
    assert [m.item for m in order.gone([4], now=0.7)] == ["f"]
    assert (order.dropped_upstream, order.skipped, order.late) == (3, 0, 0)
