"""Latest wins: one slot per camera between the MQTT handler and the detector.

A frame the detector has not started on is replaced by a newer one of the
same camera (counted as dropped), so a slow detector never builds a backlog
and never works on an old frame while a newer one waits. Cameras are served
in the order their waiting frame arrived, so a busy camera cannot starve a
quiet one. Bounded: at most one frame per camera, at most `max_cameras`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.common.pacing import wait_set

MAX_REPLACED_KEPT = 256  # per camera between two takes; more are left to the window


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
        # dict keeps insertion order: the oldest waiting camera comes first.
        self._slots: dict[str, PendingFrame] = {}
        self._ready = asyncio.Event()
        self.dropped = 0
        # camera -> seqs replaced since its last frame was taken: told to the
        # tracker with the next result, so it does not wait for them.
        self._replaced: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def put(self, frame: PendingFrame) -> bool:
        """Hold `frame`; True when it replaced one not started on (a drop)."""
        old = self._slots.pop(frame.camera, None)
        replaced = old is not None
        if not replaced and len(self._slots) >= self._max_cameras:
            raise TooManyCameras(f"more than {self._max_cameras} cameras waiting")
        if old is not None:
            self.dropped += 1
            seqs = self._replaced.setdefault(frame.camera, [])
            if len(seqs) < MAX_REPLACED_KEPT:
                seqs.append(old.seq)
        # Re-inserted at the end: a replaced camera waits behind the others.
        self._slots[frame.camera] = frame
        self._ready.set()
        return replaced

    def take_nowait(self) -> PendingFrame | None:
        if not self._slots:
            return None
        camera = next(iter(self._slots))
        frame = self._slots.pop(camera)
        frame.replaced = self._replaced.pop(camera, [])
        if not self._slots:
            self._ready.clear()
        return frame

    async def take(self, timeout_s: float) -> PendingFrame | None:
        """The next frame to work on, or None if none came within `timeout_s`."""
        if not self._slots:
            await wait_set(self._ready, timeout_s)
        return self.take_nowait()
