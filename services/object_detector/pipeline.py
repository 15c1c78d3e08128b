"""The detector's two threads, so the model runs at its own speed on one core
while the other core does the rest:

- the decode thread takes the newest frame from the mailbox (latest wins,
  cameras in turn) just before the model is free (`PreparePace`), decodes,
  resizes and shapes it for the model and leaves it in the one-slot hand-off;
- the model thread takes the prepared frame and runs the model on it, and
  nothing else: between two inferences there is no hop through the event loop;
- each result goes back to the event loop (`call_soon_threadsafe`) for crops
  and publishing, with `results_waiting` at most, so a publisher that falls
  behind holds the model back and the backlog stays in the latest-wins mailbox.

libjpeg-turbo (simplejpeg) and the LiteRT interpreter release the GIL while they
work, so the two threads really run side by side.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.object_detector.handoff import Handoff, HandoffClosed
from services.object_detector.mailbox import LatestFrames, PendingFrame
from services.object_detector.pipeline_pace import PreparePace
from services.object_detector.settings import DetectorConfig
from services.object_detector.ssd import Detection, Frame

# How often a waiting thread looks whether the pipeline is stopping.
THREAD_IDLE_S = 0.1


@dataclass(frozen=True)
class Prepared:
    """A frame decoded and resized for the model, waiting in the hand-off."""

    pending: PendingFrame
    frame: Frame  # RGB, full size: snapshots are cropped from it
    tensor: npt.NDArray[np.generic]
    config: DetectorConfig


@dataclass(frozen=True)
class Inferred:
    prepared: Prepared
    found: list[Detection]
    inference_ms: float


@dataclass(frozen=True)
class Rejected:
    """A frame that could not be prepared (a corrupt JPEG, a size that lies)."""

    pending: PendingFrame
    reason: str


@dataclass(frozen=True)
class _Crashed:
    error: BaseException


class FrameRejected(Exception):
    """Raised by `prepare` for a frame that cannot be detected: a dead letter."""


class DetectionPipeline:
    def __init__(
        self,
        mailbox: LatestFrames,
        prepare: Callable[[PendingFrame], Prepared],
        infer: Callable[[Prepared], list[Detection]],
        results_waiting: int = 1,
    ) -> None:
        self._mailbox = mailbox
        self._prepare = prepare
        self._infer = infer
        self._handoff: Handoff[Prepared] = Handoff()
        self._pace = PreparePace()
        self._room = threading.Semaphore(results_waiting)
        self._results: asyncio.Queue[Inferred | Rejected | _Crashed] = asyncio.Queue(
            maxsize=results_waiting
        )
        self._stopping = threading.Event()
        self._abandoned = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def dropped(self) -> int:
        """Prepared frames a fresher one replaced in the hand-off."""
        return self._handoff.replaced

    def start(self) -> None:
        """Start both threads; call from the event loop that reads the results."""
        self._loop = asyncio.get_running_loop()
        self._threads = [
            threading.Thread(target=self._decode_frames, name="detector-decode", daemon=True),
            threading.Thread(target=self._run_model, name="detector-model", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Take no new frame; the frame in hand is still detected and delivered."""
        self._stopping.set()

    def abandon(self) -> None:
        """Nobody reads results any more: the threads end without delivering."""
        self._stopping.set()
        self._abandoned.set()
        self._handoff.close()

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    async def next_result(self, timeout_s: float) -> Inferred | Rejected | None:
        """The next result, or None if none came within `timeout_s`. A thread's
        unexpected error is raised here, on the event loop."""
        try:
            item = await asyncio.wait_for(self._results.get(), timeout_s)
        except TimeoutError:
            return None
        self._room.release()
        if isinstance(item, _Crashed):
            raise item.error
        return item

    # -- the threads -------------------------------------------------------------

    def _deliver(self, item: Inferred | Rejected | _Crashed) -> bool:
        """To the event loop, once there is room; False if nobody will read it."""
        while not self._room.acquire(timeout=THREAD_IDLE_S):
            if self._abandoned.is_set():
                return False
        loop = self._loop
        assert loop is not None  # started
        try:
            loop.call_soon_threadsafe(self._results.put_nowait, item)
        except RuntimeError:  # the loop is closed
            return False
        return True

    def _decode_frames(self) -> None:
        try:
            while not self._stopping.is_set():
                if not self._handoff.wait_empty(THREAD_IDLE_S):
                    continue
                lead_s = self._pace.wait_before_prepare_s(time.monotonic())
                if lead_s > 0 and self._stopping.wait(lead_s):
                    break
                pending = self._mailbox.take_blocking(THREAD_IDLE_S)
                if pending is None:
                    continue
                started = time.perf_counter()
                try:
                    prepared = self._prepare(pending)
                except FrameRejected as error:
                    self._deliver(Rejected(pending, str(error)))
                    continue
                self._pace.prepared(time.perf_counter() - started)
                try:
                    replaced = self._handoff.put(prepared)
                except HandoffClosed:
                    break
                if replaced is not None:
                    self._mailbox.count_dropped(replaced.pending)
        except Exception as error:  # a fault, not a frame: the stage fails as it should
            self._deliver(_Crashed(error))
        finally:
            self._handoff.close()  # the model finishes what is in it, then ends

    def _run_model(self) -> None:
        try:
            while True:
                prepared = self._handoff.take(THREAD_IDLE_S)
                if prepared is None:
                    if self._handoff.closed:
                        return
                    continue
                started = time.perf_counter()
                self._pace.inference_started(time.monotonic())
                found = self._infer(prepared)
                inference_s = time.perf_counter() - started
                self._pace.inferred(inference_s)
                if not self._deliver(Inferred(prepared, found, inference_s * 1000)):
                    return
        except Exception as error:
            self._deliver(_Crashed(error))
