"""Moving averages over a time window and over a count window, O(1) per sample."""

from __future__ import annotations

from collections import deque
from typing import Any


class _Window:
    """What both averages share: the samples kept and their running sum."""

    _samples: deque[Any]
    _sum: float

    @property
    def count(self) -> int:
        return len(self._samples)

    @property
    def mean(self) -> float:
        return self._sum / len(self._samples) if self._samples else 0.0


class TimeWindowAverage(_Window):
    """Mean of the samples of the last `window_s` seconds (by sample time)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()
        self._sum = 0.0
        self._newest = float("-inf")

    def add(self, ts: float, value: float) -> None:
        self._newest = max(self._newest, ts)
        self._samples.append((ts, value))
        self._sum += value
        self._evict()

    def resize(self, window_s: float) -> None:
        self.window_s = window_s
        self._evict()

    def _evict(self) -> None:
        horizon = self._newest - self.window_s
        while self._samples and self._samples[0][0] < horizon:
            _, value = self._samples.popleft()
            self._sum -= value
        if not self._samples:
            self._sum = 0.0


class CountWindowAverage(_Window):
    """Mean of the last `size` samples."""

    def __init__(self, size: int) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._sum = 0.0

    def add(self, value: float) -> None:
        if len(self._samples) == self._samples.maxlen:
            self._sum -= self._samples[0]
        self._samples.append(value)
        self._sum += value

    def resize(self, size: int) -> None:
        kept = list(self._samples)[-size:]
        self._samples = deque(kept, maxlen=size)
        self._sum = sum(kept)

    @property
    def size(self) -> int:
        return self._samples.maxlen or 0
