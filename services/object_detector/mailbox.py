"""Latest wins: one slot per camera between the MQTT handler and the detector.

A frame the detector has not started on is replaced by a newer one of the
same camera (counted as dropped, per camera), so a slow detector never builds
a backlog and never works on an old frame while a newer one waits. Cameras
take turns: the one served longest ago goes first (ties: the one whose frame
has waited longest, a replaced frame going to the back), so under overload
every camera gets its fair share whatever its frame rate. Bounded: at most
one frame per camera, at most `max_cameras`.

Thread-safe: the event loop puts, the detector's decode thread takes.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field

MAX_REPLACED_KEPT = 256  # per camera between two takes; more are left to the window
SERVED_KEPT_PER_SLOT = 4  # turns remembered: a few times the cameras that can wait


@dataclass
class PendingFrame:
    topic: str
    camera: str
    raw: bytes
    seq: int
    capture_ts: float
    width: int
    height: int
    # Seqs of this camera this one replaced unstarted (set when taken).
    replaced: list[int] = field(default_factory=list)


class TooManyCameras(Exception):
    """A frame of one camera more than the mailbox has room for."""


class LatestFrames:
    def __init__(self, max_cameras: int) -> None:
        if max_cameras < 1:
            raise ValueError(f"max_cameras must be >= 1, got {max_cameras}")
        self._max_cameras = max_cameras
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        # dict keeps insertion order: among cameras served equally long ago,
        # the oldest waiting frame comes first.
        self._slots: dict[str, PendingFrame] = {}
        # camera -> the take that last served it (round robin between cameras).
        self._served: dict[str, int] = {}
        self._takes = 0
        self.dropped = 0
        self.dropped_by_camera: Counter[str] = Counter()
        # camera -> seqs replaced since its last frame was taken: told to the
        # tracker with the next result, so it does not wait for them.
        self._replaced: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def put(self, frame: PendingFrame) -> bool:
        """Hold `frame`; True when it replaced one not started on (a drop)."""
        with self._lock:
            old = self._slots.pop(frame.camera, None)
            replaced = old is not None
            if not replaced and len(self._slots) >= self._max_cameras:
                raise TooManyCameras(f"more than {self._max_cameras} cameras waiting")
            if old is not None:
                self._count_drop(frame.camera, [old.seq])
            # Re-inserted at the end: a replaced camera waits behind the others.
            self._slots[frame.camera] = frame
            self._ready.notify()
            return replaced

    def count_dropped(self, frame: PendingFrame) -> None:
        """`frame` was taken but will not be detected (a newer one of its
        camera replaced it later on): its seqs go with that camera's next frame."""
        with self._lock:
            self._count_drop(frame.camera, [*frame.replaced, frame.seq], drops=1)

    def _count_drop(self, camera: str, seqs: list[int], drops: int = 1) -> None:
        self.dropped += drops
        self.dropped_by_camera[camera] += drops
        kept = self._replaced.setdefault(camera, [])
        kept.extend(seqs[: max(0, MAX_REPLACED_KEPT - len(kept))])

    def forget(self, camera: str) -> None:
        """A camera gone silent: its turn and its counts go (bounded memory)."""
        with self._lock:
            if camera not in self._slots:
                self._served.pop(camera, None)
                self._replaced.pop(camera, None)
                self.dropped_by_camera.pop(camera, None)

    def take_nowait(self) -> PendingFrame | None:
        with self._lock:
            return self._take_locked()

    def _take_locked(self) -> PendingFrame | None:
        if not self._slots:
            return None
        # min() keeps the first of equals: waiting order breaks the ties.
        camera = min(self._slots, key=lambda c: self._served.get(c, -1))
        frame = self._slots.pop(camera)
        frame.replaced = self._replaced.pop(camera, [])
        self._takes += 1
        self._served[camera] = self._takes
        if len(self._served) > SERVED_KEPT_PER_SLOT * self._max_cameras:
            # Cameras served long ago and not waiting: their turn no longer matters.
            for old in sorted(self._served, key=self._served.__getitem__)[: self._max_cameras]:
                if old not in self._slots:
                    del self._served[old]
        return frame

    def take_blocking(self, timeout_s: float) -> PendingFrame | None:
        """The next frame to work on, or None if none came within `timeout_s`
        (for a thread)."""
        with self._lock:
            if not self._slots:
                self._ready.wait(timeout_s)
            return self._take_locked()

    async def take(self, timeout_s: float) -> PendingFrame | None:
        """`take_blocking` for a coroutine."""
        return await asyncio.to_thread(self.take_blocking, timeout_s)
