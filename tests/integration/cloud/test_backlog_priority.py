"""A live alert overtakes a 10 000-message backlog that drains at the budget."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.cloud.cloud_helpers import (
    alert_bytes,
    fill_spool_with_summaries,
    ids_in_order,
    on_topic,
)
from tests.integration.cloud.cloud_probe import CloudRig

BACKLOG = 10_000
LIVE_ALERTS = 100
BUDGET_KBPS = 2000  # ~10 s of backlog at the full rate
# A token bucket may send its burst (1 s of budget, EDGEGW_BURST_S) at once,
# which over a few seconds' window looks like a rate above the budget: the
# drain's rate is measured from the arrival of this many summaries (each over
# 200 bytes on the wire, so more than a burst) on.
PAST_BURST = BUDGET_KBPS * 1000 // 8 // 200


def test_live_alert_reaches_the_cloud_within_2_s_while_a_10000_backlog_drains(
    rig: CloudRig, root: str, tmp_path: Path
) -> None:
    spool_path = tmp_path / "backlog" / "spool.db"
    backlog = fill_spool_with_summaries(spool_path, root, BACKLOG)
    watcher = rig.at_cloud("#")
    forwarder = rig.probe("alert-forwarder")
    rig.bridge(EDGEGW_SPOOL_PATH=str(spool_path), EDGEGW_BUDGET_KBPS=str(BUDGET_KBPS))
    watcher.wait_for(on_topic(f"{root}/summary/"), count=200, timeout_s=20)
    published_at: dict[str, float] = {}
    for number in range(LIVE_ALERTS):
        message_id, payload = alert_bytes(number)
        published_at[message_id] = time.time()
        assert forwarder.publish(f"{root}/alert/kitchen", payload) == 0
        time.sleep(0.05)
    alerts = watcher.wait_for(on_topic(f"{root}/alert/"), count=LIVE_ALERTS, timeout_s=20)
    drain_end = time.time()
    drained = watcher.received(on_topic(f"{root}/summary/"))
    drained_when_live_done = len(drained)
    assert drained_when_live_done > PAST_BURST + 500, "too little drained to measure a rate"
    steady_from = sorted(m.at for m in drained)[PAST_BURST]
    window = [m for m in drained if steady_from < m.at <= drain_end]
    drain_kbps = sum(len(m.topic) + len(m.payload) for m in window) * 8 / 1000
    drain_kbps /= drain_end - steady_from
    first_arrival: dict[str, float] = {}
    for message in alerts:
        first_arrival.setdefault(message.json()["id"], message.at)
    latencies = sorted(first_arrival[i] - published_at[i] for i in published_at)
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"backlog priority: live alert p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms; backlog {drained_when_live_done}/{BACKLOG} drained "
        f"at {drain_kbps:.0f} kbit/s of {BUDGET_KBPS}"
    )
    assert drained_when_live_done < BACKLOG, "the backlog was gone: nothing was measured"
    assert p99 < 2.0
    assert drain_kbps <= BUDGET_KBPS * 1.05, "the drain exceeded the budget"
    # The drain itself goes on in order.
    summaries = ids_in_order(watcher.received(on_topic(f"{root}/summary/")))
    assert summaries == backlog[: len(summaries)]
