"""Upload pacing: a byte token bucket, and live traffic ahead of the backlog.

Everything takes `now` (seconds on a monotonic clock) from the caller and
answers how long to wait instead of sleeping, so the policy is tested without
time passing and the async shell owns the only `asyncio.sleep`.

Policy of `UplinkPacer` (three lanes sharing one budget):

* ``live`` — a message that arrived while the cloud link is up. It is limited
  only by the shared bucket (the allocated rate, with a burst).
* ``backlog`` — a message replayed from the spool. While a live message
  announced by `live_waiting` is neither sent nor cancelled, the backlog
  sends nothing (strict priority; it is told to re-ask after the time the
  live bytes and its own need). While live traffic was seen in the last
  ``live_quiet_s`` it is further capped at ``backlog_share`` of the rate by a
  second bucket. With no live traffic, the drain may use the whole rate.
* ``media`` — camera snapshots (snapshot_uplink). Paced exactly like the
  backlog: images never delay an alert.

So a live alert during a 10 000-message drain waits at most for the tokens
its own bytes need (plus any pending live bytes ahead of it), and the drain
never exceeds the allocated rate.
"""

from __future__ import annotations

import math
from typing import Literal

Lane = Literal["live", "backlog", "media"]

# The shortest wait handed to a backlog that yields to pending live bytes.
_RETRY_S = 0.001


def bytes_per_s(kbit_per_s: float) -> float:
    """The allocator speaks kbit/s (1 kbit = 1000 bit); buckets count bytes."""
    return kbit_per_s * 1000.0 / 8.0


class TokenBucket:
    """Tokens are bytes; they refill at `rate` per second up to `burst`.

    A message larger than the burst waits for a full bucket and then leaves
    the bucket in debt, so the long-run average still equals the rate.
    """

    def __init__(self, rate_bytes_per_s: float, burst_bytes: float, now: float) -> None:
        _check_rate(rate_bytes_per_s)
        if burst_bytes <= 0:
            raise ValueError("burst_bytes must be positive")
        self._rate = rate_bytes_per_s
        self._burst = burst_bytes
        self._tokens = burst_bytes
        self._updated = now

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        return self._burst

    def tokens(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def set_rate(
        self, rate_bytes_per_s: float, now: float, burst_bytes: float | None = None
    ) -> None:
        """Change the rate from `now` on; tokens earned so far keep the old rate."""
        _check_rate(rate_bytes_per_s)
        if burst_bytes is not None and burst_bytes <= 0:
            raise ValueError("burst_bytes must be positive")
        self._refill(now)
        self._rate = rate_bytes_per_s
        if burst_bytes is not None:
            self._burst = burst_bytes
            self._tokens = min(self._tokens, burst_bytes)

    def delay_for(self, nbytes: int, now: float) -> float:
        """Seconds from `now` until `nbytes` may go; `math.inf` at rate 0."""
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        self._refill(now)
        needed = min(float(nbytes), self._burst)
        # A shortfall below a micro-byte is float rounding, not a reason to wait.
        if self._tokens + 1e-6 >= needed:
            return 0.0
        if self._rate == 0:
            return math.inf
        return (needed - self._tokens) / self._rate

    def consume(self, nbytes: int, now: float) -> None:
        """Debit what was sent; the bucket may go into debt (see class doc)."""
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        self._refill(now)
        self._tokens -= nbytes

    def _refill(self, now: float) -> None:
        # A clock that steps back (it should not, it is monotonic) earns nothing.
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._updated = max(self._updated, now)


class UplinkPacer:
    """Shares one upload rate between live messages and the spool's backlog."""

    def __init__(
        self,
        rate_kbit_per_s: float,
        now: float,
        burst_s: float = 1.0,
        min_burst_bytes: int = 4096,
        backlog_share: float = 0.5,
        live_quiet_s: float = 5.0,
    ) -> None:
        if burst_s <= 0:
            raise ValueError("burst_s must be positive")
        if min_burst_bytes <= 0:
            raise ValueError("min_burst_bytes must be positive")
        if not 0 < backlog_share <= 1:
            raise ValueError("backlog_share must be in (0, 1]")
        if live_quiet_s < 0:
            raise ValueError("live_quiet_s must be >= 0")
        self._burst_s = burst_s
        self._min_burst = float(min_burst_bytes)
        self._share = backlog_share
        self._live_quiet_s = live_quiet_s
        rate = bytes_per_s(rate_kbit_per_s)
        self._shared = TokenBucket(rate, self._burst_for(rate), now)
        self._backlog = TokenBucket(
            rate * backlog_share, self._burst_for(rate) * backlog_share, now
        )
        self._last_live: float | None = None
        self._live_pending = 0

    def _burst_for(self, rate: float) -> float:
        # Bursts of a second's worth, but never smaller than one typical message.
        return max(self._min_burst, rate * self._burst_s)

    @property
    def rate_kbit_per_s(self) -> float:
        return self._shared.rate * 8.0 / 1000.0

    def set_rate(self, rate_kbit_per_s: float, now: float) -> None:
        """The allocator published a new budget."""
        rate = bytes_per_s(rate_kbit_per_s)
        burst = self._burst_for(rate)
        self._shared.set_rate(rate, now, burst)
        self._backlog.set_rate(rate * self._share, now, burst * self._share)

    def live_waiting(self, nbytes: int, now: float) -> None:
        """A live message of `nbytes` arrived and waits to be sent."""
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        self._live_pending += nbytes
        self._mark_live(now)

    def live_active(self, now: float) -> bool:
        return self._last_live is not None and now - self._last_live < self._live_quiet_s

    def delay_for(self, nbytes: int, lane: Lane, now: float) -> float:
        """Seconds to wait before sending `nbytes` on `lane`; 0.0 means go."""
        if lane == "live":
            return self._shared.delay_for(nbytes, now)
        if self._live_pending:
            # Strict priority: come back once the live bytes and this message
            # could both have gone; by then the live sender has taken its turn.
            own = nbytes / self._shared.rate if self._shared.rate else math.inf
            return max(self._shared.delay_for(self._live_pending, now) + own, _RETRY_S)
        delay = self._shared.delay_for(nbytes, now)
        if self.live_active(now):
            delay = max(delay, self._backlog.delay_for(nbytes, now))
        return delay

    def record_sent(self, nbytes: int, lane: Lane, now: float) -> None:
        """Debit what actually went out (payload, topic and protocol overhead)."""
        self._shared.consume(nbytes, now)
        if lane == "live":
            self._live_pending = max(0, self._live_pending - nbytes)
            self._mark_live(now)
        elif self.live_active(now):
            self._backlog.consume(nbytes, now)

    def live_cancelled(self, nbytes: int) -> None:
        """A waiting live message will not be sent on this lane (it went to the spool)."""
        self._live_pending = max(0, self._live_pending - nbytes)

    def _mark_live(self, now: float) -> None:
        # No reset of the backlog bucket: it is only debited during live
        # periods and refills in between, so a new period starts near full.
        self._last_live = now


def _check_rate(rate: float) -> None:
    if not math.isfinite(rate) or rate < 0:
        raise ValueError("rate must be a finite number >= 0")
