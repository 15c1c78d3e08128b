"""The detector's threads and what they share: the one-slot hand-off, the
mailbox's turns between cameras and its per-camera drops, and the pipeline
itself with stand-ins for decode and model (real threads, no timing asserted)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import numpy as np
import pytest

from services.object_detector.handoff import Handoff, HandoffClosed
from services.object_detector.mailbox import LatestFrames, PendingFrame
from services.object_detector.pipeline import (
    DetectionPipeline,
    FrameRejected,
    Inferred,
    Prepared,
    Rejected,
)
from services.object_detector.settings import DetectorConfig
from services.object_detector.ssd import Detection, DetectionBox

WAIT_S = 10.0  # generous: only a hang reaches it


def pending(camera: str, seq: int, raw: bytes = b"") -> PendingFrame:
    return PendingFrame(f"t/{camera}", camera, raw, seq, 0.0, 10, 10)


def test_handoff_latest_wins_and_hands_back_the_replaced() -> None:
    slot: Handoff[int] = Handoff()
    assert slot.put(1) is None
    assert slot.put(2) == 1 and slot.replaced == 1
    assert slot.wait_empty(0) is False
    assert slot.take(0) == 2
    assert slot.wait_empty(0) is True and slot.take(0) is None


def test_a_closed_handoff_gives_what_it_holds_then_nothing() -> None:
    slot: Handoff[int] = Handoff()
    slot.put(5)
    slot.close()
    with pytest.raises(HandoffClosed):
        slot.put(6)
    assert slot.take(WAIT_S) == 5
    assert slot.take(WAIT_S) is None  # closed: no wait


def test_every_camera_gets_its_turn_however_fast_it_sends() -> None:
    box = LatestFrames(max_cameras=4)
    served: Counter[str] = Counter()
    seq = 0
    for _ in range(100):
        # "fast" sends four frames for every one of the others.
        for camera in ("fast", "fast", "slow", "fast", "other", "fast"):
            seq += 1
            box.put(pending(camera, seq))
        taken = box.take_nowait()
        assert taken is not None
        served[taken.camera] += 1
    # Three cameras waiting every time: strict turns, a third each (+-1).
    assert max(served.values()) - min(served.values()) <= 1, served


def test_drops_are_counted_per_camera_and_travel_with_the_next_frame() -> None:
    box = LatestFrames(max_cameras=4)
    for seq in (1, 2, 3):
        box.put(pending("a", seq))
    box.put(pending("b", 1))
    assert box.dropped_by_camera == Counter({"a": 2})
    taken = box.take_nowait()
    assert taken is not None and taken.seq == 3
    # Taken, then replaced later on (in the hand-off): a drop of its camera,
    # and its seqs go to the tracker with that camera's next frame.
    box.count_dropped(taken)
    assert box.dropped_by_camera["a"] == 3 and box.dropped == 3
    box.put(pending("a", 4))
    later = [box.take_nowait(), box.take_nowait()]
    assert [(f.camera, f.seq, f.replaced) for f in later if f] == [
        ("b", 1, []),
        ("a", 4, [1, 2, 3]),
    ]


def test_forgotten_cameras_leave_nothing_behind() -> None:
    box = LatestFrames(max_cameras=2)
    for number in range(50):
        box.put(pending(f"cam{number}", 1))
        box.put(pending(f"cam{number}", 2))
        box.take_nowait()
        box.forget(f"cam{number}")
    assert not box.dropped_by_camera and box.dropped == 50


def test_turns_remembered_stay_bounded_without_forget() -> None:
    box = LatestFrames(max_cameras=2)
    for number in range(100):
        box.put(pending(f"cam{number}", 1))
        box.take_nowait()
    assert len(box._served) <= 4 * 2  # noqa: SLF001 - the bound is the point


def detection() -> Detection:
    return Detection(label="person", score=0.9, box=DetectionBox(x1=0, y1=0, x2=5, y2=5))


def prepare(frame: PendingFrame) -> Prepared:
    if frame.raw == b"corrupt":
        raise FrameRejected("not a JPEG")
    image = np.zeros((10, 10, 3), np.uint8)
    return Prepared(frame, image, image[np.newaxis], DetectorConfig())


async def collect(pipeline: DetectionPipeline, count: int) -> list[Inferred | Rejected]:
    results: list[Inferred | Rejected] = []
    for _ in range(200):
        result = await pipeline.next_result(WAIT_S / 100)
        if result is not None:
            results.append(result)
        if len(results) == count:
            break
    return results


def test_frames_go_through_both_threads_and_come_back_on_the_loop() -> None:
    box = LatestFrames(max_cameras=4)
    model_threads: set[str] = set()

    def infer(prepared: Prepared) -> list[Detection]:
        model_threads.add(threading.current_thread().name)
        return [detection()]

    async def scenario() -> list[Inferred | Rejected]:
        pipeline = DetectionPipeline(box, prepare, infer)
        pipeline.start()
        try:
            results = []
            for frame in (pending("a", 1), pending("a", 2, b"corrupt"), pending("b", 7)):
                box.put(frame)
                results += await collect(pipeline, 1)
            return results
        finally:
            pipeline.abandon()

    results = asyncio.run(scenario())
    assert [type(r).__name__ for r in results] == ["Inferred", "Rejected", "Inferred"]
    first, rejected, last = results
    assert isinstance(first, Inferred) and first.prepared.pending.seq == 1
    assert first.found == [detection()]
    assert isinstance(rejected, Rejected) and rejected.reason == "not a JPEG"
    assert isinstance(last, Inferred) and last.prepared.pending.camera == "b"
    assert model_threads == {"detector-model"}, "inference runs on its own thread"


def test_a_model_fault_is_raised_on_the_event_loop() -> None:
    def infer(prepared: Prepared) -> list[Detection]:
        raise RuntimeError("interpreter broke")

    async def scenario() -> None:
        box = LatestFrames(max_cameras=1)
        pipeline = DetectionPipeline(box, prepare, infer)
        pipeline.start()
        try:
            box.put(pending("a", 1))
            await collect(pipeline, 1)
        finally:
            pipeline.abandon()

    with pytest.raises(RuntimeError, match="interpreter broke"):
        asyncio.run(scenario())


def test_stopping_finishes_the_frame_in_hand_and_ends_both_threads() -> None:
    box = LatestFrames(max_cameras=1)
    started = threading.Event()
    release = threading.Event()

    def infer(prepared: Prepared) -> list[Detection]:
        started.set()
        release.wait(WAIT_S)
        return []

    async def scenario() -> tuple[list[Inferred | Rejected], bool]:
        pipeline = DetectionPipeline(box, prepare, infer)
        pipeline.start()
        box.put(pending("a", 1))
        await asyncio.to_thread(started.wait, WAIT_S)
        pipeline.stop()  # while the model runs
        release.set()
        results = await collect(pipeline, 1)
        for _ in range(100):
            if not pipeline.running:
                break
            await asyncio.sleep(WAIT_S / 100)
        return results, pipeline.running

    results, running = asyncio.run(scenario())
    assert len(results) == 1 and isinstance(results[0], Inferred)
    assert not running
