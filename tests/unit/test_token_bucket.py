"""Token bucket and the live-ahead-of-backlog pacer, on an injected clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
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
    with pytest.raises(ValueError, match="backlog_share"):
        UplinkPacer(64, now=0.0, backlog_share=0)


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


def drain(pacer: UplinkPacer, lane: Lane, size: int, until: float, start: float) -> list[float]:
    """Send `size`-byte messages on `lane` as fast as the pacer allows."""
    now, sent = start, list[float]()
    while True:
        now += pacer.delay_for(size, lane, now)
        if now > until:
            return sent
        pacer.record_sent(size, lane, now)
        sent.append(now)


def test_backlog_alone_uses_the_whole_rate() -> None:
    pacer = UplinkPacer(rate_kbit_per_s=80, now=0.0, min_burst_bytes=1000)  # 10 000 B/s
    sent = drain(pacer, "backlog", 500, until=10.0, start=0.0)
    # 10 s at 10 000 B/s plus the 10 000-byte initial burst.
    assert len(sent) * 500 == pytest.approx(110_000, abs=500)


def test_backlog_capped_to_its_share_while_live_traffic_flows() -> None:
    pacer = UplinkPacer(
        rate_kbit_per_s=80, now=0.0, min_burst_bytes=1000, backlog_share=0.25, live_quiet_s=5.0
    )
    pacer.record_sent(100, "live", now=0.0)
    # Live keeps arriving every second; interleave the backlog with it.
    now, backlog_bytes = 0.0, 0
    for second in range(1, 11):
        while True:
            delay = pacer.delay_for(500, "backlog", now)
            if now + delay >= second:
                break
            now += delay
            pacer.record_sent(500, "backlog", now)
            backlog_bytes += 500
        now = float(second)
        pacer.record_sent(100, "live", now)
    # Share 0.25 of 10 000 B/s for 10 s, plus its burst (2 500 B).
    assert backlog_bytes == pytest.approx(27_500, abs=1000)
    # After the live traffic goes quiet, the drain gets the whole rate back.
    assert not pacer.live_active(now + 5.0)
    later = drain(pacer, "backlog", 500, until=now + 15.0, start=now + 5.0)
    assert len(later) * 500 >= 95_000


def test_live_message_goes_ahead_of_a_saturating_backlog() -> None:
    pacer = UplinkPacer(rate_kbit_per_s=80, now=0.0, min_burst_bytes=1000)
    sent = drain(pacer, "backlog", 1000, until=30.0, start=0.0)
    now = sent[-1]
    # The bucket is empty; a live alert arrives and is announced.
    pacer.live_waiting(800, now)
    live_delay = pacer.delay_for(800, "live", now)
    backlog_delay = pacer.delay_for(1000, "backlog", now)
    assert live_delay <= 800 / 10_000 + 1e-9
    # The backlog must wait for the live bytes and its own.
    assert backlog_delay >= (800 + 1000) / 10_000 - 1e-9
    assert backlog_delay > live_delay
    pacer.record_sent(800, "live", now + live_delay)
    assert pacer.delay_for(1000, "backlog", now + live_delay) > 0


def test_cancelled_live_message_releases_the_reservation() -> None:
    pacer = UplinkPacer(rate_kbit_per_s=80, now=0.0, min_burst_bytes=1000)
    pacer.live_waiting(9_000, now=0.0)
    assert pacer.delay_for(2_000, "backlog", now=0.0) > 0
    pacer.live_cancelled(9_000)
    # Live was seen, so the backlog is still held to its share (burst 5 000 B).
    assert pacer.delay_for(2_000, "backlog", now=0.0) == 0.0


def test_budget_change_applies_to_both_lanes() -> None:
    pacer = UplinkPacer(rate_kbit_per_s=80, now=0.0, min_burst_bytes=1000)
    drain(pacer, "backlog", 1000, until=5.0, start=0.0)
    pacer.set_rate(8, now=5.0)  # 1000 B/s
    assert pacer.rate_kbit_per_s == pytest.approx(8)
    sent = drain(pacer, "backlog", 1000, until=25.0, start=5.0)
    assert len(sent) == pytest.approx(20, abs=2)


def test_live_alerts_during_a_long_drain_wait_only_for_their_own_bytes() -> None:
    """Simulated clock: 2 000 backlog messages and a live alert every 2 s."""
    pacer = UplinkPacer(rate_kbit_per_s=64, now=0.0)  # 8 000 B/s
    now, backlog, next_live, steps = 0.0, 2_000, 1.0, 0
    pending: list[float] = []
    waits: list[float] = []
    while backlog:
        steps += 1
        assert steps < 100_000, "the pacer made the sender spin without progress"
        if now >= next_live:
            pacer.live_waiting(500, now)
            pending.append(next_live)
            next_live += 2.0
        lane: Lane = "live" if pending else "backlog"
        size = 500 if pending else 400
        delay = pacer.delay_for(size, lane, now)
        if delay == 0:
            pacer.record_sent(size, lane, now)
            if pending:
                waits.append(now - pending.pop(0))
            else:
                backlog -= 1
            continue
        now = min(now + delay, next_live)
    assert len(waits) > 40
    assert max(waits) <= 500 / 8_000 + 1e-9
    # The drain used at most the rate, and at least its guaranteed share.
    assert 0.5 * 8_000 <= 2_000 * 400 / now <= 8_000
