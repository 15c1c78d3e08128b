"""Per-analytic upload rates: one token bucket per analytic the allocator priced.

The allocator publishes, retained on `qos/<analytic>`, the level it chose for
each analytic; that level's `cost_kbps` is the upload rate the analytic was
given. The bridge holds what it uploads on an analytic's behalf to that rate,
so one busy camera cannot spend the uplink the plan gave the others. An
analytic with no knob (no allocator running, or not priced) is limited only
by the bridge's shared budget.

Like `token_bucket`, everything takes `now` (monotonic seconds) from the
caller, so the policy is tested without time passing.
"""

from __future__ import annotations

import math

from services.cloud_bridge.token_bucket import TokenBucket, bytes_per_s


class AnalyticRates:
    def __init__(self, burst_s: float = 1.0, min_burst_bytes: int = 4096) -> None:
        if burst_s <= 0 or min_burst_bytes <= 0:
            raise ValueError("burst_s and min_burst_bytes must be positive")
        self._burst_s = burst_s
        self._min_burst = float(min_burst_bytes)
        self._buckets: dict[str, TokenBucket] = {}

    def _burst_for(self, rate: float) -> float:
        # A second's worth, but never less than one small message.
        return max(self._min_burst, rate * self._burst_s)

    def set_rate(self, analytic: str, kbit_per_s: float, now: float) -> None:
        """The allocator (re)priced `analytic`; bytes already earned keep the old rate."""
        if not math.isfinite(kbit_per_s) or kbit_per_s < 0:
            raise ValueError(f"{analytic}: rate must be a finite number >= 0 (kbit/s)")
        rate = bytes_per_s(kbit_per_s)
        bucket = self._buckets.get(analytic)
        if bucket is None:
            self._buckets[analytic] = TokenBucket(rate, self._burst_for(rate), now)
        else:
            bucket.set_rate(rate, now, self._burst_for(rate))

    def forget(self, analytic: str) -> None:
        """The analytic left the plan: no per-analytic limit any more."""
        self._buckets.pop(analytic, None)

    def kbit_per_s(self, analytic: str) -> float | None:
        bucket = self._buckets.get(analytic)
        return None if bucket is None else bucket.rate * 8.0 / 1000.0

    def all_kbit_per_s(self) -> dict[str, float]:
        return {name: bucket.rate * 8.0 / 1000.0 for name, bucket in sorted(self._buckets.items())}

    def delay_for(self, analytic: str, nbytes: int, now: float) -> float:
        """Seconds until `analytic` may send `nbytes`; 0.0 when it has no limit."""
        bucket = self._buckets.get(analytic)
        return 0.0 if bucket is None else bucket.delay_for(nbytes, now)

    def consume(self, analytic: str, nbytes: int, now: float) -> None:
        bucket = self._buckets.get(analytic)
        if bucket is not None:
            bucket.consume(nbytes, now)
