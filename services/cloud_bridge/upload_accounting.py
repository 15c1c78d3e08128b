"""What the bridge uploaded: bytes per topic class and analytic, budget use.

Cumulative counters since the bridge started, plus a sliding window (fixed
one-second buckets, so memory is bounded by window/bucket) that gives the
measured upload rate to compare with the allocator's budget. `snapshot`
returns a plain dict the bridge publishes retained on ``uplink/usage``.
Time is passed in (monotonic seconds) so the window is tested without sleeping.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

OVERFLOW_ANALYTIC = "_other"


@dataclass(slots=True)
class _Counter:
    bytes: int = 0
    messages: int = 0

    def add(self, nbytes: int) -> None:
        self.bytes += nbytes
        self.messages += 1

    def as_dict(self) -> dict[str, int]:
        return {"bytes": self.bytes, "messages": self.messages}


@dataclass(slots=True)
class _Bucket:
    start: float
    by_class: dict[str, int] = field(default_factory=dict)


class UploadAccounting:
    def __init__(
        self,
        budget_kbit_per_s: float,
        now: float,
        window_s: float = 60.0,
        bucket_s: float = 1.0,
        max_analytics: int = 256,
    ) -> None:
        if window_s <= 0 or bucket_s <= 0 or bucket_s > window_s:
            raise ValueError("need 0 < bucket_s <= window_s")
        if max_analytics < 1:
            raise ValueError("max_analytics must be >= 1")
        self._check_budget(budget_kbit_per_s)
        self._budget = budget_kbit_per_s
        self._window_s = window_s
        self._bucket_s = bucket_s
        self._max_analytics = max_analytics
        self._started = now
        self._by_class: dict[str, _Counter] = {}
        # Analytic names come from topics; past the cap they share one row.
        self._by_analytic: dict[str, _Counter] = {}
        self._buckets: deque[_Bucket] = deque(maxlen=math.ceil(window_s / bucket_s) + 1)

    @staticmethod
    def _check_budget(kbit_per_s: float) -> None:
        if not math.isfinite(kbit_per_s) or kbit_per_s < 0:
            raise ValueError("budget must be a finite number >= 0 (kbit/s)")

    def set_budget(self, budget_kbit_per_s: float) -> None:
        self._check_budget(budget_kbit_per_s)
        self._budget = budget_kbit_per_s

    def record(self, topic_class: str, analytic: str, nbytes: int, now: float) -> None:
        """Count one upload of `nbytes` (what went on the wire for it)."""
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        self._by_class.setdefault(topic_class, _Counter()).add(nbytes)
        if analytic not in self._by_analytic and len(self._by_analytic) >= self._max_analytics:
            analytic = OVERFLOW_ANALYTIC
        self._by_analytic.setdefault(analytic, _Counter()).add(nbytes)
        bucket = self._bucket_at(now)
        bucket.by_class[topic_class] = bucket.by_class.get(topic_class, 0) + nbytes

    def _bucket_at(self, now: float) -> _Bucket:
        start = self._started + math.floor((now - self._started) / self._bucket_s) * self._bucket_s
        if self._buckets and self._buckets[-1].start >= start:
            # Same bucket, or a late record for an older one: the newest absorbs it.
            return self._buckets[-1]
        bucket = _Bucket(start)
        self._buckets.append(bucket)
        return bucket

    def window_bytes(self, now: float) -> dict[str, int]:
        """Bytes per topic class uploaded in the last `window_s` seconds."""
        totals: dict[str, int] = {}
        for bucket in self._buckets:
            if bucket.start + self._bucket_s > now - self._window_s:
                for name, nbytes in bucket.by_class.items():
                    totals[name] = totals.get(name, 0) + nbytes
        return totals

    def rate_kbit_per_s(self, now: float) -> float:
        """Measured upload rate over the window (or since start, if shorter)."""
        span = min(self._window_s, max(now - self._started, self._bucket_s))
        return sum(self.window_bytes(now).values()) * 8.0 / 1000.0 / span

    def snapshot(self, now: float) -> dict[str, object]:
        window = self.window_bytes(now)
        rate = self.rate_kbit_per_s(now)
        budget_used = rate / self._budget if self._budget > 0 else None
        total = _Counter(
            sum(c.bytes for c in self._by_class.values()),
            sum(c.messages for c in self._by_class.values()),
        )
        return {
            "since_s": now - self._started,
            "window_s": self._window_s,
            "budget_kbit_s": self._budget,
            "rate_kbit_s": rate,
            "budget_used": budget_used,
            "over_budget": rate > self._budget,
            "window_bytes": sum(window.values()),
            "total": total.as_dict(),
            "by_class": {
                name: {**counter.as_dict(), "window_bytes": window.get(name, 0)}
                for name, counter in sorted(self._by_class.items())
            },
            "by_analytic": {
                name: counter.as_dict() for name, counter in sorted(self._by_analytic.items())
            },
        }
