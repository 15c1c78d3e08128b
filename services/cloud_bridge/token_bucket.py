"""Upload pacing: a byte token bucket, and live traffic ahead of the backlog.

Everything takes `now` (seconds on a monotonic clock) from the caller and
answers how long to wait instead of sleeping, so the policy is tested without
time passing and the async shell owns the only `asyncio.sleep`.

Policy of `UplinkPacer`: three lanes spend one bucket (the allocated rate,
with a burst of `burst_s` of it).

* ``live`` — a message that arrived while the cloud link is up. It may spend
  every token in the bucket.
* ``backlog`` — a message replayed from the spool — and ``media`` (camera
  snapshots, snapshot_uplink) may spend only what lies above a *live
  reserve* (``live_reserve_share`` of the burst), and nothing at all while a
  live message announced by `live_waiting` is neither sent nor cancelled.

Why a reserve and not a share of the rate: capping the drain at a fraction
of the rate while live traffic flows left the link half idle for a whole
post-outage drain whenever a summary trickled in every few seconds. The
reserve costs the drain nothing in the long run — the tokens it holds are a
level, not a rate; whatever live traffic does not spend, the drain gets — so
the drain runs at the rate minus the live bytes. And it keeps live first: a
saturating drain leaves the bucket at the reserve, so a live message that
fits in it goes at once, and a larger one (or a burst of them) waits only
for the tokens of its own bytes and the live bytes ahead of it, since
nothing else spends while they wait.

Over any interval all lanes together send at most the burst plus the rate
times its length (plus one message's overshoot, see `TokenBucket`). The one
way a live message waits longer: a backlog or media message larger than the
burst minus the reserve waits for a full bucket and then eats into the
reserve (past the burst, into debt), which a live message arriving then
waits out too; `burst_s` is sized (and `min_burst_bytes` floors it) so
spooled messages do not get there, though a big snapshot on a small budget
may.
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

    def delay_for(self, nbytes: int, now: float, keep: float = 0.0) -> float:
        """Seconds from `now` until `nbytes` may go and still leave `keep`
        tokens in the bucket; `math.inf` at rate 0."""
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        if not 0 <= keep < self._burst:
            raise ValueError("keep must be in [0, burst)")
        self._refill(now)
        # Past the burst the tokens never get: such a message waits for a
        # full bucket, keeps nothing back, and leaves the bucket in debt.
        needed = min(float(nbytes) + keep, self._burst)
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
    """Shares one upload rate between live messages, the backlog and media."""

    def __init__(
        self,
        rate_kbit_per_s: float,
        now: float,
        burst_s: float = 1.0,
        min_burst_bytes: int = 4096,
        live_reserve_share: float = 0.25,
    ) -> None:
        if burst_s <= 0:
            raise ValueError("burst_s must be positive")
        if min_burst_bytes <= 0:
            raise ValueError("min_burst_bytes must be positive")
        # At most half: the backlog needs the rest of the bucket for its own
        # messages, or each one leaves the bucket in debt (see module doc).
        if not 0 <= live_reserve_share <= 0.5:
            raise ValueError("live_reserve_share must be in [0, 0.5]")
        self._burst_s = burst_s
        self._min_burst = float(min_burst_bytes)
        self._reserve_share = live_reserve_share
        rate = bytes_per_s(rate_kbit_per_s)
        self._shared = TokenBucket(rate, self._burst_for(rate), now)
        self._live_pending = 0

    def _burst_for(self, rate: float) -> float:
        # Bursts of a second's worth, but never smaller than one typical message.
        return max(self._min_burst, rate * self._burst_s)

    @property
    def rate_kbit_per_s(self) -> float:
        return self._shared.rate * 8.0 / 1000.0

    @property
    def live_reserve_bytes(self) -> float:
        """Tokens only live messages may spend; follows the burst on `set_rate`."""
        return self._shared.burst * self._reserve_share

    def set_rate(self, rate_kbit_per_s: float, now: float) -> None:
        """The allocator published a new budget."""
        rate = bytes_per_s(rate_kbit_per_s)
        self._shared.set_rate(rate, now, self._burst_for(rate))

    def live_waiting(self, nbytes: int) -> None:
        """A live message of `nbytes` arrived and waits to be sent."""
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        self._live_pending += nbytes

    def delay_for(self, nbytes: int, lane: Lane, now: float) -> float:
        """Seconds to wait before sending `nbytes` on `lane`; 0.0 means go."""
        if lane == "live":
            return self._shared.delay_for(nbytes, now)
        reserve = self.live_reserve_bytes
        if self._live_pending:
            # Strict priority: come back when the live bytes could have gone
            # and this message still find its tokens above the reserve; by
            # then the live sender has taken its turn.
            own = min(float(nbytes), self._shared.burst - reserve)
            shortfall = self._live_pending + own + reserve - self._shared.tokens(now)
            if self._shared.rate == 0:
                return math.inf
            return max(shortfall / self._shared.rate, _RETRY_S)
        return self._shared.delay_for(nbytes, now, keep=reserve)

    def record_sent(self, nbytes: int, lane: Lane, now: float) -> None:
        """Debit what actually went out (payload, topic and protocol overhead)."""
        self._shared.consume(nbytes, now)
        if lane == "live":
            self._live_pending = max(0, self._live_pending - nbytes)

    def live_cancelled(self, nbytes: int) -> None:
        """A waiting live message will not be sent on this lane (it went to the spool)."""
        self._live_pending = max(0, self._live_pending - nbytes)


def _check_rate(rate: float) -> None:
    if not math.isfinite(rate) or rate < 0:
        raise ValueError("rate must be a finite number >= 0")
