"""Received audio chunks: checked against the wire format, then held in a
bounded per-mic backlog until the classifier takes them.

The backlog bounds latency rather than loss: each mic may have at most
`max_pending_s` of audio waiting, and a newer chunk pushes out the oldest.
A dropped chunk leaves a gap in `seq`, which the mic's stream notices and
restarts its patches from (it never glues audio across a hole).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from schemas.audio import CHUNK_PROPERTIES, SAMPLE_RATE_HZ
from schemas.envelope import MAX_TIMESTAMP
from services.audio_capture.pcm import BadChunkError, Pcm16, validate_chunk


@dataclass(frozen=True, eq=False)
class Chunk:
    mic: str
    seq: int
    capture_ts: float  # wall-clock time of the first sample
    samples: Pcm16

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE_HZ


def _integer(properties: Mapping[str, str], name: str) -> int:
    try:
        return int(properties[name])
    except ValueError:
        raise BadChunkError(f"property {name}={properties[name]!r} is not an integer") from None


def parse_chunk(mic: str, payload: bytes, properties: Mapping[str, str]) -> Chunk:
    """A chunk from a message of `audio/<mic>/chunk`; raises BadChunkError saying why not."""
    missing = [name for name in CHUNK_PROPERTIES if name not in properties]
    if missing:
        raise BadChunkError(f"missing properties {missing}; every chunk carries {CHUNK_PROPERTIES}")
    seq = _integer(properties, "seq")
    if seq < 0:
        raise BadChunkError(f"property seq={seq} is negative")
    try:
        capture_ts = float(properties["capture_ts"])
    except ValueError:
        reason = f"property capture_ts={properties['capture_ts']!r} is not a number"
        raise BadChunkError(reason) from None
    # Up to half the models' range: room for the patch times added to it.
    if not (math.isfinite(capture_ts) and 0 <= capture_ts <= MAX_TIMESTAMP / 2):
        raise BadChunkError(f"property capture_ts={capture_ts} is not a time")
    samples = validate_chunk(
        payload,
        sample_rate_hz=_integer(properties, "sample_rate"),
        channels=_integer(properties, "channels"),
    )
    return Chunk(mic=mic, seq=seq, capture_ts=capture_ts, samples=samples)


class ChunkBacklog:
    """Chunks waiting per mic, at most `max_pending_s` of audio each; mics served in turn."""

    def __init__(self, max_pending_s: float) -> None:
        self._max_pending_s = max_pending_s
        self._pending: dict[str, deque[Chunk]] = {}
        self._seconds: dict[str, float] = {}
        self.dropped = 0

    def offer(self, chunk: Chunk) -> int:
        """Queue `chunk`; returns how many older chunks of its mic were dropped for it."""
        queue = self._pending.setdefault(chunk.mic, deque())
        queue.append(chunk)
        seconds = self._seconds.get(chunk.mic, 0.0) + chunk.seconds
        dropped = 0
        # The newest chunk always stays, even if it alone exceeds the bound.
        while seconds > self._max_pending_s and len(queue) > 1:
            seconds -= queue.popleft().seconds
            dropped += 1
        self._seconds[chunk.mic] = seconds
        self.dropped += dropped
        return dropped

    def take(self) -> Chunk | None:
        """The oldest chunk of the mic served longest ago, or None if none waits."""
        for mic in list(self._pending):
            queue = self._pending.pop(mic)
            if not queue:
                self._seconds.pop(mic, None)
                continue
            chunk = queue.popleft()
            self._seconds[mic] -= chunk.seconds
            if queue:
                self._pending[mic] = queue  # re-inserted last: round robin
            else:
                self._seconds.pop(mic, None)
            return chunk
        return None

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._pending.values())

    def discard(self, mic: str) -> None:
        self._pending.pop(mic, None)
        self._seconds.pop(mic, None)
