"""Per-analytic upload rates and the snapshot queue of cloud-bridge (no broker:
time is passed in)."""

from __future__ import annotations

import math

import pytest

from services.cloud_bridge.analytic_rates import AnalyticRates
from services.cloud_bridge.snapshot_uplink import LatestSnapshots, PendingSnapshot


def snapshot(topic: str, analytic: str, size: int = 1000) -> PendingSnapshot:
    return PendingSnapshot(topic, b"j" * size, analytic)


def test_an_analytic_without_a_knob_is_not_limited() -> None:
    rates = AnalyticRates()
    assert rates.delay_for("detector.front", 10**6, now=0.0) == 0.0
    assert rates.kbit_per_s("detector.front") is None


def test_an_analytic_sends_at_its_allocated_rate_over_time() -> None:
    rates = AnalyticRates(burst_s=1.0, min_burst_bytes=1000)
    rates.set_rate("detector.front", 80.0, now=0.0)  # 10 000 bytes/s
    sent, now = 0, 0.0
    while now < 10.0:
        wait = rates.delay_for("detector.front", 2500, now)
        now += wait
        rates.consume("detector.front", 2500, now)
        sent += 2500
    # A 1 s burst at the start, then exactly the rate.
    assert sent / now == pytest.approx(10_000, rel=0.12)


def test_a_lower_knob_applies_from_now_and_forget_removes_the_limit() -> None:
    rates = AnalyticRates(burst_s=1.0, min_burst_bytes=1000)
    rates.set_rate("detector.front", 80.0, now=0.0)
    rates.consume("detector.front", 10_000, now=0.0)  # bucket empty
    rates.set_rate("detector.front", 8.0, now=0.0)  # 1000 bytes/s, burst 1000
    assert rates.delay_for("detector.front", 1000, now=0.0) == pytest.approx(1.0)
    assert rates.all_kbit_per_s() == {"detector.front": pytest.approx(8.0)}
    rates.forget("detector.front")
    assert rates.delay_for("detector.front", 1000, now=0.0) == 0.0


def test_a_zero_rate_never_sends_and_a_bad_rate_is_refused() -> None:
    rates = AnalyticRates()
    rates.set_rate("detector.front", 0.0, now=0.0)
    rates.consume("detector.front", 5000, now=0.0)
    assert rates.delay_for("detector.front", 100, now=5.0) == math.inf
    with pytest.raises(ValueError, match=r"detector\.front"):
        rates.set_rate("detector.front", float("nan"), now=0.0)


def test_a_newer_snapshot_replaces_the_waiting_one_and_the_bound_drops_the_oldest() -> None:
    waiting = LatestSnapshots(max_pending=2)
    assert waiting.put(snapshot("s/a/person", "detector.a", 10)) == (False, 0)
    assert waiting.put(snapshot("s/a/person", "detector.a", 20)) == (True, 0)
    assert waiting.put(snapshot("s/b/person", "detector.b")) == (False, 0)
    assert waiting.put(snapshot("s/c/person", "detector.c")) == (False, 1)
    rates = AnalyticRates()
    first, wait = waiting.pick(rates, now=0.0)
    assert wait == 0.0 and first is not None and first.topic == "s/b/person"


def test_pick_skips_a_camera_out_of_tokens_for_one_that_may_send() -> None:
    rates = AnalyticRates(burst_s=1.0, min_burst_bytes=1000)
    rates.set_rate("detector.busy", 8.0, now=0.0)  # 1000 bytes/s
    rates.consume("detector.busy", 3000, now=0.0)  # a full 1000 bucket, 2000 in debt
    waiting = LatestSnapshots(max_pending=8)
    waiting.put(snapshot("s/busy/person", "detector.busy"))
    waiting.put(snapshot("s/quiet/person", "detector.quiet"))
    picked, wait = waiting.pick(rates, now=0.0)
    assert wait == 0.0 and picked is not None and picked.analytic == "detector.quiet"
    waiting.take(picked)
    picked, wait = waiting.pick(rates, now=0.0)
    assert picked is not None and picked.analytic == "detector.busy"
    assert wait == pytest.approx(3.0)  # the 2000 of debt, then 1000 for this one


def test_a_failed_send_waits_again_first_unless_a_newer_one_came() -> None:
    waiting = LatestSnapshots(max_pending=4)
    old = snapshot("s/a/person", "detector.a", 10)
    waiting.put(old)
    waiting.put(snapshot("s/b/person", "detector.b"))
    waiting.take(old)
    waiting.put_back(old)
    picked, _ = waiting.pick(AnalyticRates(), now=0.0)
    assert picked is old
    waiting.take(old)
    newer = snapshot("s/a/person", "detector.a", 30)
    waiting.put(newer)
    waiting.put_back(old)
    assert len(waiting) == 2
    picked, _ = waiting.pick(AnalyticRates(), now=0.0)
    assert picked is not None
    waiting.take(picked)
    assert waiting.pick(AnalyticRates(), now=0.0)[0] is newer
