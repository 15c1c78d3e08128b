"""Put one camera's detections back in frame order.

Detector replicas on a shared subscription finish frames in any order, and
some frames never come back (a latest-wins drop, a replica killed mid-frame,
QoS 0). The tracker must see them in `seq` order, so each camera holds a
small window: a message is released as soon as every earlier frame has been
released; a gap is given up on (skipped) when the window holds `max_frames`
messages or its oldest has waited `max_wait_s` (so are a camera's first
frames, whose predecessors may still be on their way from another replica).
A message of a frame at or before the last released one comes too late: it
is counted and dropped, since the tracker has already moved past that frame.

A detector says which frames it dropped (latest wins: replaced before it
started on them), so a gap that will never fill is not waited for; only
frames lost without a word (QoS 0, a replica killed mid-frame) hold the window.

A camera that restarts numbers its frames from 0 again: a message behind the
window but captured after the last released frame (frames are captured in
`seq` order, so only a restart does that) starts the camera's order afresh
instead of being dropped for ever after.

Pure: time is passed in, so tests need no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
GONE_KEPT = 1024  # announced drops remembered ahead of the window


@dataclass(frozen=True)
class Ordered(Generic[T]):
    seq: int
    capture_ts: float
    item: T


class FrameOrder(Generic[T]):
    """The reorder window of one camera."""

    def __init__(self, max_frames: int = 8, max_wait_s: float = 0.5) -> None:
        if max_frames < 1 or max_wait_s < 0:
            raise ValueError("max_frames must be >= 1 and max_wait_s >= 0")
        self._max_frames = max_frames
        self._max_wait_s = max_wait_s
        # seq -> (arrival time, message); at most max_frames entries.
        self._held: dict[int, tuple[float, Ordered[T]]] = {}
        # Frames a detector said it dropped (latest wins): nothing to wait for.
        self._gone: set[int] = set()
        self._next: int | None = None  # the seq released next when it comes
        self._last_ts = float("-inf")  # capture time of the latest released frame
        self.released = 0
        self.late = 0  # dropped: at or before a frame already released
        self.skipped = 0  # frames given up on (never came in time)
        self.restarts = 0
        self.dropped_upstream = 0  # frames a detector dropped and said so

    def __len__(self) -> int:
        return len(self._held)

    def push(self, seq: int, capture_ts: float, item: T, now: float) -> list[Ordered[T]]:
        """Hold one frame's message; what may go to the tracker now, in order."""
        message = Ordered(seq, capture_ts, item)
        if self._next is not None and seq < self._next:
            if capture_ts <= self._last_ts:
                self.late += 1
                return []
            # Numbered from the start again, and newer: the camera restarted.
            released = self._release_all()
            self.restarts += 1
            self._next = None
            self._held[seq] = (now, message)
            return released + self._release(now)
        if seq in self._held:
            self.late += 1  # a duplicate (a redelivery): the first one counts
            return []
        self._held[seq] = (now, message)
        return self._release(now)

    def gone(self, seqs: Iterable[int], now: float) -> list[Ordered[T]]:
        """Frames that will never come (a detector replaced them by newer ones
        before starting on them): the window stops waiting for them."""
        for seq in seqs:
            if self._next is None or seq >= self._next:
                self._gone.add(seq)
        while len(self._gone) > GONE_KEPT:
            self._gone.discard(min(self._gone))
        return self._release(now)

    def due(self, now: float) -> list[Ordered[T]]:
        """What the passing of time releases (call it now and then)."""
        return self._release(now)

    def flush(self) -> list[Ordered[T]]:
        """Everything held, in order (the camera went quiet)."""
        return self._release_all()

    def _release(self, now: float) -> list[Ordered[T]]:
        out: list[Ordered[T]] = []
        while True:
            if self._next is not None and self._next in self._gone:
                self._gone.discard(self._next)
                self._next += 1
                self.dropped_upstream += 1
                continue
            if not self._held:
                break
            lowest = min(self._held)
            if lowest == self._next:
                out.append(self._pop(lowest))
                continue
            # A gap (or the camera's first frames, whose predecessors may be
            # on their way from another replica): wait, but not for ever.
            arrived = min(at for at, _ in self._held.values())
            if len(self._held) >= self._max_frames or now - arrived >= self._max_wait_s:
                if self._next is not None:
                    announced = sum(self._next <= seq < lowest for seq in self._gone)
                    self.skipped += lowest - self._next - announced
                    self.dropped_upstream += announced
                out.append(self._pop(lowest))
                continue
            break
        return out

    def _release_all(self) -> list[Ordered[T]]:
        out: list[Ordered[T]] = []
        while self._held:
            lowest = min(self._held)
            if self._next is not None:
                self.skipped += lowest - self._next
            out.append(self._pop(lowest))
        return out

    def _pop(self, seq: int) -> Ordered[T]:
        _, message = self._held.pop(seq)
        self._next = seq + 1
        self._gone = {gone for gone in self._gone if gone > seq}
        self._last_ts = message.capture_ts
        self.released += 1
        return message
