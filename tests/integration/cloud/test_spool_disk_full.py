"""A full disk under the spool during a cloud outage (a 2 MiB tmpfs of its own).

The bridge never exits, nothing is acknowledged and dead-lettered while the
disk is full (the alerts wait at the gateway broker), health and
`uplink/usage` say so, and every alert reaches the cloud once it is back.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.harness.small_disk import fill_disk
from tests.integration.cloud.cloud_helpers import alert_bytes, wait_for_ids
from tests.integration.cloud.cloud_probe import CloudRig

ALERTS = 1600  # ~2.4 MB of alerts: more than the disk holds
PAD = 1400


def test_a_full_spool_disk_holds_alerts_upstream_and_loses_none(
    rig: CloudRig, root: str, spool_disk: Path
) -> None:
    cloud = rig.cloud
    watcher = rig.at_cloud("alert/#")
    cloud.stop()
    local = rig.at_gateway(
        "uplink/usage", "status/cloud-bridge", "health/cloud-bridge", "deadletter/#"
    )
    process = rig.bridge(
        EDGEGW_SPOOL_PATH=str(spool_disk / "spool.db"), EDGEGW_HEALTH_INTERVAL_S="0.5"
    )
    local.wait_for(lambda m: m.topic.endswith("status/cloud-bridge") and m.payload == b"online")
    forwarder = rig.probe("alert-forwarder")
    alerts = []
    hog: Path | None = None
    for number in range(ALERTS):
        message_id, payload = alert_bytes(number, pad=PAD)
        assert forwarder.publish(f"{root}/alert/kitchen", payload) == 0
        alerts.append(message_id)
        if number == 100:
            hog = fill_disk(spool_disk)  # the disk fills while alerts keep coming
    local.wait_for(
        lambda m: m.topic.endswith("health/cloud-bridge") and m.json()["state"] == "degraded",
        timeout_s=15,
    )
    full = local.wait_for(
        lambda m: m.topic.endswith("uplink/usage") and m.json()["spool_disk_full"], timeout_s=15
    )[-1].json()
    assert full["spool_disk_errors"] > 0
    assert process.poll() is None
    assert not local.received(lambda m: "/deadletter/" in m.topic)

    assert hog is not None
    hog.unlink()
    cloud.start()
    wait_for_ids(watcher, f"{root}/alert/", alerts, timeout_s=90)
    assert process.poll() is None, process.output()[-3000:]
    assert not local.received(lambda m: "/deadletter/" in m.topic)
    assert "Traceback" not in process.output()


def test_a_full_spool_disk_with_the_cloud_up_never_stops_the_bridge(
    rig: CloudRig, root: str, spool_disk: Path
) -> None:
    """Delivered messages cannot even be marked (a delete needs the disk too):
    on main the delivery-marking loop crashed the bridge (exit 1)."""
    watcher = rig.at_cloud("alert/#")
    local = rig.at_gateway("deadletter/#", "status/cloud-bridge")
    process = rig.bridge(EDGEGW_SPOOL_PATH=str(spool_disk / "spool.db"))
    local.wait_for(lambda m: m.topic.endswith("status/cloud-bridge") and m.payload == b"online")
    forwarder = rig.probe("alert-forwarder")
    alerts = []
    hog: Path | None = None
    for number in range(600):
        message_id, payload = alert_bytes(number, pad=PAD)
        assert forwarder.publish(f"{root}/alert/kitchen", payload) == 0
        alerts.append(message_id)
        if number == 200:
            wait_for_ids(watcher, f"{root}/alert/", alerts, timeout_s=30)
            hog = fill_disk(spool_disk)
    time.sleep(3.0)  # the bridge works against the full disk for a while
    assert process.poll() is None, process.output()[-3000:]
    assert hog is not None
    hog.unlink()
    wait_for_ids(watcher, f"{root}/alert/", alerts, timeout_s=60)
    assert process.poll() is None, process.output()[-3000:]
    assert not local.received(lambda m: "/deadletter/" in m.topic)
