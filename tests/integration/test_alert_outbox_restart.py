"""alert-forwarder restarted while alerts await the bridge's receipt: the
unconfirmed ones are published again by the next run (same ids), the
confirmed ones are not. No cloud-bridge here: the test plays its receipts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from schemas.alerts import TakenReceipt
from schemas.topics import CLOUD_BRIDGE
from tests.harness.events import methane_high
from tests.harness.probe import Probe
from tests.harness.stage_process import StageProcess

ALERTS = 20
CONFIRMED = 5


def test_unconfirmed_alerts_are_sent_again_after_a_restart(
    probe: Callable[..., Probe],
    stage: Callable[..., StageProcess],
    root: str,
    tmp_path: Path,
) -> None:
    watcher = probe("operator")
    watcher.subscribe(f"{root}/alert/#")
    watcher.subscribe(f"{root}/status/alert-forwarder")
    watcher.subscribe(f"{root}/metrics/alert-forwarder")
    env = {
        "EDGEGW_CONFIRM_WITH_BRIDGE": "true",
        # No re-send within the test: only a restart sends an alert again.
        "EDGEGW_CONFIRM_TIMEOUT_S": "600",
        "EDGEGW_CONFIRM_BACKOFF_CAP_S": "600",
        "EDGEGW_OUTBOX_PATH": str(tmp_path / "outbox" / "outbox.db"),
        "EDGEGW_HEALTH_INTERVAL_S": "0.5",
    }
    forwarder = stage("alert-forwarder", **env)
    watcher.wait_for(
        lambda m: m.topic.endswith("status/alert-forwarder") and m.payload == b"online"
    )
    gas = probe("gas-average")
    for _ in range(ALERTS):
        event = methane_high(f"boiler-{uuid.uuid4().hex[:8]}")
        assert gas.publish(f"{root}/event/boiler", event.to_bytes()) == 0
    first = watcher.wait_for(lambda m: m.topic == f"{root}/alert/boiler", count=ALERTS)
    ids = [m.json()["id"] for m in first]
    assert len(set(ids)) == ALERTS

    bridge = probe("cloud-bridge")
    receipt = TakenReceipt(source=CLOUD_BRIDGE, message_ids=ids[:CONFIRMED])
    assert bridge.publish(f"{root}/uplink/taken", receipt.to_bytes()) == 0
    watcher.wait_for(
        lambda m: (
            m.topic.endswith("metrics/alert-forwarder")
            and m.json()["gauges"].get("outbox_size") == ALERTS - CONFIRMED
        ),
        timeout_s=10,
    )
    time.sleep(1.0)  # a re-send round takes the confirmed ones off the disk
    forwarder.kill()
    forwarder.wait(timeout_s=10)

    watcher.clear()
    stage("alert-forwarder", **env)
    again = watcher.wait_for(
        lambda m: m.topic == f"{root}/alert/boiler", count=ALERTS - CONFIRMED, timeout_s=15
    )
    time.sleep(1.0)
    again = watcher.received(lambda m: m.topic == f"{root}/alert/boiler")
    assert sorted(m.json()["id"] for m in again) == sorted(ids[CONFIRMED:])
