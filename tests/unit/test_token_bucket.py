"""Token bucket and the live-ahead-of-backlog pacer, on an injected clock."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.cloud_bridge.token_bucket import Lane, TokenBucket, UplinkPacer, bytes_per_s


def test_kbit_conversion() -> None:
    assert bytes_per_s(8) == 1000.0
    assert bytes_per_s(256) == 32_000.0


def test_burst_goes_at_once_then_waits_for_refill() -> None:
    bucket = TokenBucket(rate_bytes_per_s=1000, burst_bytes=2000, now=0.0)
    assert bucket.delay_for(2000, now=0.0) == 0.0
    bucket.consume(2000, now=0.0)
    assert bucket.delay_for(500, now=0.0) == pytest.approx(0.5)
    assert bucket.delay_for(500, now=0.25) == pytest.approx(0.25)
    assert bucket.delay_for(500, now=0.5) == 0.0
    # Refill stops at the burst.
    assert bucket.tokens(now=100.0) == 2000


def test_message_larger_than_burst_waits_for_full_bucket_then_owes() -> None:
    bucket = TokenBucket(rate_bytes_per_s=100, burst_bytes=1000, now=0.0)
    bucket.consume(1000, now=0.0)
    assert bucket.delay_for(5000, now=0.0) == pytest.approx(10.0)
    bucket.consume(5000, now=10.0)
    assert bucket.tokens(now=10.0) == -4000
    # The debt is repaid at the rate: average stays 100 B/s.
    assert bucket.delay_for(100, now=10.0) == pytest.approx(41.0)


def test_rate_change_keeps_tokens_earned_at_the_old_rate() -> None:
    bucket = TokenBucket(rate_bytes_per_s=100, burst_bytes=10_000, now=0.0)
    bucket.consume(10_000, now=0.0)
    bucket.set_rate(1000, now=10.0)  # 1000 tokens earned at 100 B/s
    assert bucket.tokens(now=10.0) == pytest.approx(1000)
    assert bucket.delay_for(3000, now=10.0) == pytest.approx(2.0)


def test_keep_holds_tokens_back_except_for_a_message_past_the_burst() -> None:
    bucket = TokenBucket(rate_bytes_per_s=1000, burst_bytes=4000, now=0.0)
    bucket.consume(2000, now=0.0)
    assert bucket.delay_for(1000, now=0.0, keep=1000) == 0.0
    assert bucket.delay_for(1500, now=0.0, keep=1000) == pytest.approx(0.5)
    assert bucket.delay_for(1500, now=0.0) == 0.0
    # Past the burst it waits for a full bucket and keeps nothing back.
    assert bucket.delay_for(3500, now=0.0, keep=1000) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="keep"):
        bucket.delay_for(1, now=0.0, keep=4000)


def test_zero_rate_waits_forever_until_rate_returns() -> None:
    bucket = TokenBucket(rate_bytes_per_s=0, burst_bytes=100, now=0.0)
    bucket.consume(100, now=0.0)
    assert bucket.delay_for(1, now=50.0) == math.inf
    bucket.set_rate(10, now=50.0)
    assert bucket.delay_for(10, now=50.0) == pytest.approx(1.0)


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(-1, 10, 0.0)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1, 0, 0.0)
    with pytest.raises(ValueError, match="live_reserve_share"):
        UplinkPacer(64, now=0.0, live_reserve_share=0.6)
    with pytest.raises(ValueError, match="live_reserve_share"):
        UplinkPacer(64, now=0.0, live_reserve_share=-0.1)


@given(
    rate=st.floats(min_value=10, max_value=1e6),
    sizes=st.lists(st.integers(min_value=1, max_value=50_000), min_size=1, max_size=60),
)
def test_sending_as_told_never_beats_the_rate(rate: float, sizes: list[int]) -> None:
    burst = rate
    bucket = TokenBucket(rate, burst, now=0.0)
    now = 0.0
    for size in sizes:
        now += bucket.delay_for(size, now)
        bucket.consume(size, now)
    # Over [0, now] at most burst + rate*now bytes, plus the last message's overshoot.
    assert sum(sizes) <= burst + rate * now + max(sizes) + 1e-6 * sum(sizes)


# The pacer: 80 kbit/s is 10 000 B/s; with min_burst 1000 the burst is 10 000 B
# (one second) and the default live reserve a quarter of it.
RATE = 10_000.0
BURST = 10_000.0
RESERVE = 2_500.0


def pacer_at_80_kbit() -> UplinkPacer:
    pacer = UplinkPacer(rate_kbit_per_s=80, now=0.0, min_burst_bytes=1000)
    assert pacer.live_reserve_bytes == RESERVE
    return pacer


def drain(pacer: UplinkPacer, lane: Lane, size: int, until: float, start: float) -> list[float]:
    """Send `size`-byte messages on `lane` as fast as the pacer allows."""
    now, sent = start, list[float]()
    while True:
        now += pacer.delay_for(size, lane, now)
        if now > until:
            return sent
        pacer.record_sent(size, lane, now)
        sent.append(now)


@dataclass
class SimulatedUplink:
    """What uplink.py does, on a simulated clock: live messages are announced
    when they arrive and go first, in order; a saturating backlog fills the
    rest. Records every send, and each live message's wait and what was
    ahead of it."""

    pacer: UplinkPacer
    backlog_size: int
    sends: list[tuple[float, Lane, int]] = field(default_factory=list)
    live_waits: list[tuple[float, int, int]] = field(default_factory=list)  # wait, own, ahead

    def run(self, arrivals: list[tuple[float, int]], until: float, start: float = 0.0) -> None:
        now, upcoming = start, sorted(arrivals)
        pending: list[tuple[float, int, int]] = []  # arrived at, size, live bytes ahead
        for _ in range(1_000_000):
            while upcoming and upcoming[0][0] <= now:
                at, size = upcoming.pop(0)
                pending.append((at, size, sum(p[1] for p in pending)))
                self.pacer.live_waiting(size)
            lane: Lane = "live" if pending else "backlog"
            size = pending[0][1] if pending else self.backlog_size
            delay = self.pacer.delay_for(size, lane, now)
            if delay == 0:
                self.pacer.record_sent(size, lane, now)
                self.sends.append((now, lane, size))
                if pending:
                    at, own, ahead = pending.pop(0)
                    self.live_waits.append((now - at, own, ahead))
                continue
            assert delay > 0, "the pacer answered a negative wait"
            now = min(now + delay, upcoming[0][0] if upcoming else math.inf)
            if now > until:
                return
        raise AssertionError("the pacer made the sender spin without progress")

    def sent_bytes(self, lane: Lane, start: float = 0.0, end: float = math.inf) -> int:
        return sum(size for at, on, size in self.sends if on == lane and start <= at <= end)


def trickle(every_s: float, size: int, until: float, first: float = 1.0) -> list[tuple[float, int]]:
    count = int((until - first) / every_s) + 1
    return [(first + n * every_s, size) for n in range(count)]


def test_backlog_alone_uses_the_whole_rate_above_the_reserve() -> None:
    sent = drain(pacer_at_80_kbit(), "backlog", 500, until=10.0, start=0.0)
    # 10 s at the rate, plus the initial burst less the reserve it may not touch.
    assert len(sent) * 500 == pytest.approx(10 * RATE + BURST - RESERVE, abs=500)


def test_a_drain_beside_a_live_trickle_gets_the_rate_minus_the_live_bytes() -> None:
    """Work-conserving: a 300-byte summary every 3 s no longer halves the drain."""
    uplink = SimulatedUplink(pacer_at_80_kbit(), backlog_size=500)
    live = trickle(every_s=3.0, size=300, until=60.0)
    uplink.run(live, until=60.0)
    live_bytes = sum(size for _, size in live)
    assert uplink.sent_bytes("live") == live_bytes
    expected = 60 * RATE - live_bytes + BURST - RESERVE
    assert uplink.sent_bytes("backlog") == pytest.approx(expected, abs=500)
    # Every summary fitted in the reserve, so none waited at all.
    assert [wait for wait, _, _ in uplink.live_waits] == [0.0] * len(live)


def test_a_live_burst_past_the_reserve_waits_only_for_live_bytes() -> None:
    """Mid-drain, ten 1 000-byte alerts at once: the first ones go on the
    reserve, the rest wait for their own and earlier alerts' tokens."""
    uplink = SimulatedUplink(pacer_at_80_kbit(), backlog_size=500)
    uplink.run([(5.0, 1000)] * 10, until=8.0)
    assert len(uplink.live_waits) == 10
    for wait, own, ahead in uplink.live_waits:
        assert wait <= max(0.0, own + ahead - RESERVE) / RATE + 1e-9
    # No backlog message went between the alerts' arrival and the last one's send.
    last_alert = 5.0 + uplink.live_waits[-1][0]
    assert uplink.sent_bytes("backlog", start=5.0, end=last_alert) == 0
    assert uplink.sent_bytes("backlog", start=last_alert) > 0


def test_live_message_goes_ahead_of_a_saturating_backlog() -> None:
    pacer = pacer_at_80_kbit()
    sent = drain(pacer, "backlog", 1000, until=30.0, start=0.0)
    now = sent[-1]
    # The drain left only the reserve: an alert that fits goes at once.
    pacer.live_waiting(800)
    assert pacer.delay_for(800, "live", now) == 0.0
    # While it waits, the backlog must let the live bytes go and still leave
    # the reserve: it comes back when that is possible.
    until_refilled = (800 + 1000 + RESERVE - RESERVE) / RATE
    assert pacer.delay_for(1000, "backlog", now) == pytest.approx(until_refilled)
    pacer.record_sent(800, "live", now)
    assert pacer.delay_for(1000, "backlog", now) == pytest.approx(until_refilled)
    # Live does spend the reserve; the backlog never does.
    assert pacer.delay_for(1000, "live", now) == 0.0


def test_cancelled_live_message_releases_the_reservation() -> None:
    pacer = pacer_at_80_kbit()
    pacer.live_waiting(9_000)
    assert pacer.delay_for(2_000, "backlog", now=0.0) > 0
    pacer.live_cancelled(9_000)
    assert pacer.delay_for(2_000, "backlog", now=0.0) == 0.0


def test_budget_change_applies_to_every_lane_and_to_the_reserve() -> None:
    pacer = pacer_at_80_kbit()
    drain(pacer, "backlog", 1000, until=5.0, start=0.0)
    pacer.set_rate(800, now=5.0)  # 100 000 B/s: a burst of 100 000 B
    assert pacer.rate_kbit_per_s == pytest.approx(800)
    assert pacer.live_reserve_bytes == pytest.approx(25_000)
    pacer.set_rate(8, now=5.0)  # 1000 B/s: the burst floors at 1000 B
    assert pacer.live_reserve_bytes == pytest.approx(250)
    sent = drain(pacer, "backlog", 500, until=25.0, start=5.0)
    assert len(sent) == pytest.approx(40, abs=2)


def test_live_alerts_during_a_long_drain_go_at_once() -> None:
    """2 000 backlog messages at 64 kbit/s and a live alert every 2 s."""
    pacer = UplinkPacer(rate_kbit_per_s=64, now=0.0)  # 8 000 B/s
    uplink = SimulatedUplink(pacer, backlog_size=400)
    uplink.run(trickle(every_s=2.0, size=500, until=200.0), until=200.0)
    drained = [at for at, lane, _ in uplink.sends if lane == "backlog"][:2_000]
    assert len(drained) == 2_000
    end = drained[-1]
    assert len([w for w in uplink.live_waits if w[0] <= end]) > 40
    assert max(wait for wait, _, _ in uplink.live_waits) == 0.0
    # The drain used the rate less the live bytes, never more than the rate.
    live_rate = 500 / 2.0
    assert 0.97 * (8_000 - live_rate) <= 2_000 * 400 / end <= 8_000 + 8_000 / end


@settings(deadline=None, max_examples=60)
@given(
    kbit=st.floats(min_value=8, max_value=2_000),
    share=st.floats(min_value=0, max_value=0.5),
    backlog=st.integers(min_value=200, max_value=2000),
    live=st.lists(
        st.tuples(st.floats(min_value=0, max_value=5), st.integers(min_value=1, max_value=4096)),
        max_size=40,
    ),
)
def test_every_lane_together_keeps_to_the_budget_and_live_waits_only_for_live(
    kbit: float, share: float, backlog: int, live: list[tuple[float, int]]
) -> None:
    pacer = UplinkPacer(kbit, now=0.0, live_reserve_share=share)
    rate = bytes_per_s(kbit)
    burst = max(4096.0, rate)
    # Backlog messages that fit above the reserve and live ones that fit in
    # the burst: then nothing runs the bucket into debt (see module doc).
    above_reserve = int(burst - pacer.live_reserve_bytes)
    uplink = SimulatedUplink(pacer, backlog_size=min(backlog, above_reserve))
    uplink.run(live, until=6.0)
    for wait, own, ahead in uplink.live_waits:
        assert wait <= (own + ahead) / rate + 1e-6
    total = 0
    for at, _, size in uplink.sends:
        total += size
        assert total <= burst + rate * at + 1e-6 * total
