"""The gateway broker SIGKILLed right after a burst the bridge has not taken yet.

Mechanism under test: the gateway broker persists each second
(`autosave_interval 1`, broker/mosquitto.conf) and keeps the queue of the
bridge's persistent session; the bridge acknowledges an alert only once it
is in its spool; the publisher repeats a publish until the broker confirms it.
What this cannot cover: a kill within the autosave window (1-2 s) after the
broker acknowledged a message — measured here, a kill 0 s after the burst
lost 936 of 1000. Closing that needs an end-to-end confirmation (see the
cloud-bridge report).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.broker import MosquittoBroker
from tests.harness.probe import Probe
from tests.harness.stage_process import StageProcess
from tests.integration.cloud.cloud_broker import CloudBroker
from tests.integration.cloud.cloud_helpers import (
    alert_bytes,
    ids_in_order,
    on_topic,
    publish_until_acked,
    wait_for_ids,
)
from tests.integration.cloud.cloud_probe import CloudProbe

BURST = 1000
TAKEN_BEFORE_PAUSE = 300
# `autosave_interval 1` counts in whole seconds: a save lands 1-2 s after a
# change (a kill 1.2 s after the burst lost 822 of 1000 once, on a busy machine).
AUTOSAVE_WORST_S = 2.0


@pytest.fixture
def gateway_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    server = MosquittoBroker(tmp_path / "gateway")
    server.start()
    yield server
    server.stop()


def test_zero_alerts_lost_when_the_gateway_broker_is_killed_after_a_burst(
    gateway_broker: MosquittoBroker,
    cloud: CloudBroker,
    cloud_probe: Callable[..., CloudProbe],
    gateway_id: str,
    root: str,
    tmp_path: Path,
) -> None:
    watcher = cloud_probe()
    watcher.subscribe(f"{root}/alert/#")
    watcher.subscribe(f"{root}/status/cloud-bridge")
    bridge = StageProcess(
        "cloud-bridge",
        {
            **gateway_broker.env_for("cloud-bridge", gateway_id),
            **cloud.bridge_env(),
            "EDGEGW_SPOOL_PATH": str(tmp_path / "spool.db"),
            "EDGEGW_BUDGET_KBPS": "100000",
            "EDGEGW_RECONNECT_MAX_S": "1",
        },
        tmp_path,
    )
    publisher: Probe | None = None
    try:
        watcher.wait_for(
            lambda m: m.topic.endswith("status/cloud-bridge") and m.payload == b"online"
        )
        time.sleep(AUTOSAVE_WORST_S + 0.5)  # the bridge's session is on the broker's disk
        publisher = Probe(gateway_broker, "alert-forwarder")
        sent = []
        for number in range(BURST):
            if number == TAKEN_BEFORE_PAUSE:
                # The bridge stops taking: the rest of the burst queues on the broker.
                os.kill(bridge.pid, signal.SIGSTOP)
            message_id, payload = alert_bytes(number)
            publish_until_acked(publisher, f"{root}/alert/kitchen", payload)
            sent.append(message_id)
        publisher.close()
        publisher = None
        time.sleep(AUTOSAVE_WORST_S + 0.5)  # one autosave after the last acknowledgement
        gateway_broker.kill()
        taken = len(ids_in_order(watcher.received(on_topic(f"{root}/alert/"))))
        os.kill(bridge.pid, signal.SIGCONT)
        gateway_broker.start()
        alerts = wait_for_ids(watcher, f"{root}/alert/", sent, timeout_s=40)
        assert ids_in_order(alerts)[: len(sent)] == sent
        print(f"gateway broker kill: {taken} of {BURST} at the cloud before the kill, 0 lost")
        assert taken < BURST
        assert bridge.poll() is None
    finally:
        if publisher is not None:
            publisher.close()
        with_stopped = bridge.poll() is None
        if with_stopped:
            os.kill(bridge.pid, signal.SIGCONT)
        bridge.stop()
