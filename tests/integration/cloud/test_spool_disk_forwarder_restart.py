"""The issue's whole scenario: a 2 MiB spool volume fills during a cloud
outage while alert-forwarder turns events into alerts, and the forwarder is
SIGKILLed and restarted meanwhile. No alert is lost and the bridge never
exits: the bridge holds what it cannot spool at the broker, the forwarder
keeps what the bridge has not confirmed on disk and sends it again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson

from tests.harness.events import methane_high
from tests.harness.probe import Seen
from tests.harness.stage_process import StageProcess
from tests.integration.cloud.cloud_helpers import ids_in_order, on_topic, wait_for_ids
from tests.integration.cloud.cloud_probe import CloudRig

EVENTS = 800  # ~0.6 MB of alerts: more than a spool on a 2 MiB disk takes


def test_no_alert_lost_across_a_forwarder_restart_with_the_spool_disk_full(
    stage: Callable[..., StageProcess],
    rig: CloudRig,
    root: str,
    spool_disk: Path,
    tmp_path: Path,
) -> None:
    cloud = rig.cloud
    watcher = rig.at_cloud("alert/#")
    cloud.stop()
    local = rig.at_gateway("alert/#", "deadletter/#", "status/+")
    bridge_process = rig.bridge(EDGEGW_SPOOL_PATH=str(spool_disk / "spool.db"))
    forwarder_env = {
        "EDGEGW_CONFIRM_WITH_BRIDGE": "true",
        "EDGEGW_OUTBOX_PATH": str(tmp_path / "outbox" / "outbox.db"),
        "EDGEGW_CONFIRM_TIMEOUT_S": "1",
        "EDGEGW_CONFIRM_BACKOFF_CAP_S": "2",
    }
    forwarder = stage("alert-forwarder", **forwarder_env)
    for name in ("cloud-bridge", "alert-forwarder"):
        local.wait_for(_online(name))
    gas = rig.probe("gas-average")
    for number in range(EVENTS):
        event = methane_high(f"boiler-{number}-{uuid.uuid4().hex[:6]}")
        assert gas.publish(f"{root}/event/boiler", event.to_bytes()) == 0
        if number == EVENTS // 2:
            forwarder.kill()
            forwarder.wait(timeout_s=10)
            forwarder = stage("alert-forwarder", **forwarder_env)
    # Every event became an alert on the gateway (some more than once).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        published = ids_in_order(local.received(on_topic(f"{root}/alert/")))
        if len(published) >= EVENTS:
            break
        time.sleep(0.2)
    assert len(published) == EVENTS, len(published)
    assert bridge_process.poll() is None

    cloud.start()
    wait_for_ids(watcher, f"{root}/alert/", published, timeout_s=60)
    assert bridge_process.poll() is None, bridge_process.output()[-3000:]
    assert not local.received(lambda m: "/deadletter/" in m.topic), [
        orjson.loads(m.payload)["reason"]
        for m in local.received(lambda m: "/deadletter/" in m.topic)[:3]
    ]


def _online(stage: str) -> Callable[[Seen], bool]:
    return lambda m: m.topic.endswith(f"status/{stage}") and m.payload == b"online"
