"""The gateway broker SIGKILLed right after a burst the bridge has not taken yet.

Mechanism under test: end-to-end confirmation. The real alert-forwarder
keeps every alert in its outbox until cloud-bridge names it in an
`uplink/taken` receipt (sent once the alert is in the bridge's durable
spool), and publishes it again (same id) until then. Broker persistence
alone cannot do it: Mosquitto saves at most once a second, and a kill 0 s
after the last PUBACK lost 936 of 1000 when the publisher trusted the PUBACK.

Here the kill comes as soon as the 1000th alert is seen on the gateway
broker, with the bridge frozen (SIGSTOP) after the first 300, so most of the
burst exists only in the dead broker's memory and in the forwarder's outbox.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import orjson
import pytest

from tests.harness.broker import MosquittoBroker
from tests.harness.events import co_high
from tests.harness.probe import MakeProbe, Probe
from tests.harness.stage_process import StageProcess
from tests.integration.cloud.cloud_broker import CloudBroker
from tests.integration.cloud.cloud_helpers import (
    alert_bytes,
    ids_in_order,
    on_topic,
    wait_for_ids,
)
from tests.integration.cloud.cloud_probe import MakeCloudProbe

BURST = 1000
TAKEN_BEFORE_PAUSE = 300


@pytest.fixture
def gateway_broker(own_broker: MosquittoBroker) -> MosquittoBroker:
    """The gateway's broker, this test's own: the test kills it."""
    return own_broker


def _alert_ids(probe: Probe, root: str) -> list[str]:
    return ids_in_order(probe.received(on_topic(f"{root}/alert/")))


def _wait_for_alert_count(probe: Probe, root: str, count: int, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ids = _alert_ids(probe, root)
        if len(ids) >= count:
            return ids
        time.sleep(0.005)
    raise AssertionError(f"the forwarder published {len(_alert_ids(probe, root))} of {count}")


def test_zero_alerts_lost_when_the_gateway_broker_is_killed_right_after_a_burst(
    gateway_broker: MosquittoBroker,
    own_probe: MakeProbe,
    cloud: CloudBroker,
    cloud_probe: MakeCloudProbe,
    gateway_id: str,
    root: str,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    watcher = cloud_probe()
    watcher.subscribe(f"{root}/alert/#")
    watcher.subscribe(f"{root}/status/cloud-bridge")
    common = {"EDGEGW_RECONNECT_MAX_S": "1", "EDGEGW_HEALTH_INTERVAL_S": "0.5"}
    bridge = StageProcess(
        "cloud-bridge",
        {
            **gateway_broker.env_for("cloud-bridge", gateway_id),
            **cloud.bridge_env(),
            **common,
            "EDGEGW_SPOOL_PATH": str(tmp_path / "spool.db"),
            "EDGEGW_BUDGET_KBPS": "100000",
        },
        tmp_path,
    )
    forwarder = StageProcess(
        "alert-forwarder",
        {**gateway_broker.env_for("alert-forwarder", gateway_id), **common},
        tmp_path,
    )
    try:
        local = own_probe("operator")
        local.subscribe(f"{root}/alert/#")
        local.subscribe(f"{root}/status/alert-forwarder")
        watcher.wait_for(
            lambda m: m.topic.endswith("status/cloud-bridge") and m.payload == b"online"
        )
        local.wait_for(
            lambda m: m.topic.endswith("status/alert-forwarder") and m.payload == b"online"
        )
        gas = own_probe("gas-average")
        run = uuid.uuid4().hex[:6]
        for number in range(BURST):
            if number == TAKEN_BEFORE_PAUSE:
                _wait_for_alert_count(local, root, TAKEN_BEFORE_PAUSE, timeout_s=15)
                # The bridge stops taking: the rest of the burst queues on the broker.
                os.kill(bridge.pid, signal.SIGSTOP)
            assert gas.publish(f"{root}/event/kitchen", co_high(f"{run}-{number}").to_bytes()) == 0
        sent = _wait_for_alert_count(local, root, BURST, timeout_s=20)
        gateway_broker.kill()  # right after the forwarder's last alert: no autosave since
        killed_at = time.monotonic()
        taken = len(ids_in_order(watcher.received(on_topic(f"{root}/alert/"))))
        assert len(sent) == BURST  # one alert per event, each with its own id
        gateway_broker.start()
        os.kill(bridge.pid, signal.SIGCONT)

        alerts = wait_for_ids(watcher, f"{root}/alert/", sent, timeout_s=30)
        recovered_s = time.monotonic() - killed_at
        assert set(ids_in_order(alerts)) == set(sent)  # nothing lost, nothing extra

        # Every alert confirmed: the forwarder's outbox empties.
        after = own_probe("operator")
        after.subscribe(f"{root}/metrics/alert-forwarder")
        report = after.wait_for(
            lambda m: m.json().get("gauges", {}).get("outbox_size") == 0, timeout_s=15
        )[-1]
        counters = report.json()["counters"]
        print(
            f"gateway broker kill: {taken} of {BURST} at the cloud before the kill, 0 lost; "
            f"forwarder re-sent {counters.get('alerts_resent', 0)}, "
            f"confirmed {counters.get('alerts_confirmed', 0)}; all at the cloud "
            f"{recovered_s:.1f} s after the kill; test {time.monotonic() - started:.1f} s"
        )
        assert taken < BURST
        assert counters.get("alerts_confirmed", 0) >= BURST
        assert bridge.poll() is None and forwarder.poll() is None
    finally:
        if bridge.poll() is None:
            os.kill(bridge.pid, signal.SIGCONT)
        bridge.stop()
        forwarder.stop()


def test_receipts_name_the_alerts_the_bridge_took(
    gateway_broker: MosquittoBroker,
    own_probe: MakeProbe,
    cloud: CloudBroker,
    gateway_id: str,
    root: str,
    tmp_path: Path,
) -> None:
    """The bridge confirms each alert it spooled, a repeat too, in batches."""
    bridge = StageProcess(
        "cloud-bridge",
        {
            **gateway_broker.env_for("cloud-bridge", gateway_id),
            **cloud.bridge_env(),
            "EDGEGW_SPOOL_PATH": str(tmp_path / "spool.db"),
        },
        tmp_path,
    )
    try:
        local = own_probe("operator")
        local.subscribe(f"{root}/uplink/taken")
        local.subscribe(f"{root}/status/cloud-bridge")
        local.wait_for(lambda m: m.topic.endswith("status/cloud-bridge") and m.payload == b"online")
        publisher = own_probe("alert-forwarder")
        sent = []
        for number in range(50):
            message_id, payload = alert_bytes(number)
            assert publisher.publish(f"{root}/alert/kitchen", payload) == 0
            sent.append(message_id)
        assert publisher.publish(f"{root}/alert/kitchen", alert_bytes(0)[1]) == 0  # a re-send
        deadline = time.monotonic() + 10
        named: list[str] = []
        while time.monotonic() < deadline:
            receipts = local.received(on_topic(f"{root}/uplink/taken"))
            named = [i for m in receipts for i in orjson.loads(m.payload)["message_ids"]]
            if len(named) >= len(sent) + 1:
                break
            time.sleep(0.05)
        assert sorted(set(named)) == sorted(sent)
        assert named.count(sent[0]) == 2  # the repeat is confirmed again
        assert len(receipts) < len(named)  # batched, not one receipt per alert
    finally:
        bridge.stop()
