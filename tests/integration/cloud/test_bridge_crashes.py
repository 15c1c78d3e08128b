"""The bridge SIGKILLed again and again while it spools and drains alerts."""

from __future__ import annotations

import random
import threading
import time

from tests.integration.cloud.cloud_helpers import alert_bytes, ids_in_order, wait_for_ids
from tests.integration.cloud.cloud_probe import CloudRig

KILLS = 20


def test_no_alert_is_lost_when_the_bridge_is_killed_20_times(rig: CloudRig, root: str) -> None:
    watcher = rig.at_cloud("alert/#")
    forwarder = rig.probe("alert-forwarder")
    # The first start registers the bridge's persistent session on the gateway
    # broker: from then on, alerts wait there while the bridge is dead.
    first = rig.bridge()
    probe_local = rig.at_gateway("status/cloud-bridge")
    probe_local.wait_for(lambda m: m.payload == b"online")
    sent: list[str] = []
    done = threading.Event()

    def publish_steadily() -> None:
        number = 0
        while not done.is_set():
            message_id, payload = alert_bytes(number)
            assert forwarder.publish(f"{root}/alert/kitchen", payload) == 0
            sent.append(message_id)
            number += 1
            time.sleep(0.02)

    publisher = threading.Thread(target=publish_steadily, daemon=True)
    publisher.start()
    rng = random.Random(5)
    process = first
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 1.4))  # import, connect, spool, drain: any of them
            process.kill()
            process.wait(10)
            process = rig.bridge()
    finally:
        done.set()
        publisher.join(10)
    alerts = wait_for_ids(watcher, f"{root}/alert/", sent, timeout_s=30)
    unique = ids_in_order(alerts)
    print(
        f"bridge kills: {KILLS}, alerts {len(sent)}, all arrived, {len(alerts) - len(unique)} dups"
    )
    assert set(unique) == set(sent)
    assert process.poll() is None
