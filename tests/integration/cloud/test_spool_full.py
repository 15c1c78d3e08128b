"""A spool too small for the outage: summaries go oldest first, alerts stay."""

from __future__ import annotations

from tests.integration.cloud.cloud_helpers import (
    alert_bytes,
    ids_in_order,
    on_topic,
    summary_bytes,
    wait_for_ids,
)
from tests.integration.cloud.cloud_probe import CloudRig

SPOOL_BYTES = 20_000
SUMMARIES = 30
ALERTS = 50  # more alert bytes than the spool holds: the last ones wait upstream
LATE_SUMMARIES = 5  # queued upstream behind the held alerts, then delivered


def test_full_spool_evicts_oldest_summaries_keeps_every_alert_and_reports_losses(
    rig: CloudRig, root: str
) -> None:
    cloud = rig.cloud
    watcher = rig.at_cloud("#")
    cloud.stop()  # the link is down for the whole filling
    local = rig.at_gateway("uplink/usage", "status/cloud-bridge")
    rig.bridge(EDGEGW_SPOOL_MAX_BYTES=str(SPOOL_BYTES))
    local.wait_for(lambda m: m.topic.endswith("status/cloud-bridge") and m.payload == b"online")
    analytic = rig.probe("gas-average")
    forwarder = rig.probe("alert-forwarder")
    summaries, alerts, late = [], [], []
    for number in range(SUMMARIES):
        message_id, payload = summary_bytes(number, pad=300)
        assert analytic.publish(f"{root}/summary/gas-average", payload) == 0
        summaries.append(message_id)
    for number in range(ALERTS):
        message_id, payload = alert_bytes(number, pad=300)
        assert forwarder.publish(f"{root}/alert/kitchen", payload) == 0
        alerts.append(message_id)
    for number in range(SUMMARIES, SUMMARIES + LATE_SUMMARIES):
        message_id, payload = summary_bytes(number, pad=300)
        assert analytic.publish(f"{root}/summary/gas-average", payload) == 0
        late.append(message_id)
    full = local.wait_for(
        lambda m: (
            m.topic.endswith("uplink/usage")
            and m.json()["losses"].get("summary_evicted", 0) > 0
            and m.json()["spool_bytes"] > SPOOL_BYTES - 1000
        ),
        timeout_s=15,
    )[-1].json()
    assert full["spool_bytes"] <= SPOOL_BYTES
    assert full["cloud_connected"] is False
    assert not any(key.startswith("alert_") for key in full["losses"]), full["losses"]

    cloud.start()
    wait_for_ids(watcher, f"{root}/alert/", alerts, timeout_s=30)
    assert ids_in_order(watcher.received(on_topic(f"{root}/alert/"))) == alerts
    final = local.wait_for(
        lambda m: (
            m.topic.endswith("uplink/usage")
            and m.json()["spool_entries"] == 0
            and m.json()["cloud_connected"]
        ),
        timeout_s=15,
    )[-1].json()
    arrived = ids_in_order(watcher.received(on_topic(f"{root}/summary/")))
    evicted = final["losses"].get("summary_evicted", 0)
    refused = final["losses"].get("summary_refused", 0)
    # Oldest first: what survived is the newest part of the early summaries.
    assert arrived == [s for s in summaries + late if s in arrived]
    assert arrived[: SUMMARIES - evicted] == summaries[evicted:]
    assert evicted + refused + len(arrived) == SUMMARIES + LATE_SUMMARIES
    assert evicted >= 1
    print(
        f"spool full: {evicted} summaries evicted, {refused} refused, all {ALERTS} alerts "
        f"delivered ({full['spool_entries']} in the full spool, the rest held upstream)"
    )
