"""The cloud broker goes away in the middle of a burst of alerts and comes back."""

from __future__ import annotations

import time

from tests.integration.cloud.cloud_helpers import (
    alert_bytes,
    ids_in_order,
    on_topic,
    wait_for_ids,
)
from tests.integration.cloud.cloud_probe import CloudRig

BURST = 1000


def test_burst_of_1000_alerts_across_a_cloud_outage_arrives_complete_once_and_in_order(
    rig: CloudRig, root: str
) -> None:
    cloud = rig.cloud
    watcher = rig.at_cloud("#")
    local = rig.at_gateway("uplink/usage")
    bridge_process = rig.bridge()
    watcher.wait_for(lambda m: m.topic == f"{root}/status/cloud-bridge" and m.payload == b"online")
    forwarder = rig.probe("alert-forwarder")
    sent = []
    for number in range(BURST):
        if number == BURST // 4:
            cloud.stop()  # mid-burst: the bridge must spool the rest
        message_id, payload = alert_bytes(number)
        assert forwarder.publish(f"{root}/alert/kitchen", payload) == 0
        sent.append(message_id)
    delivered_before_restart = len(watcher.received(on_topic(f"{root}/alert/")))
    time.sleep(1.0)
    cloud.start()
    restarted = time.monotonic()
    alerts = wait_for_ids(watcher, f"{root}/alert/", sent, timeout_s=60)
    replay_s = time.monotonic() - restarted
    arrived = ids_in_order(alerts)
    assert arrived == sent, "extra or out-of-order alerts at the cloud"
    print(
        f"outage: {delivered_before_restart} before the outage, all {BURST} after "
        f"{replay_s:.1f} s, {len(alerts) - BURST} duplicates (dropped by id)"
    )
    usage = local.wait_for(
        lambda m: m.json()["bytes_by_class"].get("alert", 0) > 0 and m.json()["spool_entries"] == 0,
        timeout_s=10,
    )[-1].json()
    assert usage["messages_by_class"]["alert"] >= BURST
    assert usage["cloud_connected"] is True
    bridge_process.terminate()
    assert bridge_process.wait(15) == 0  # SIGTERM: a clean stop
