"""The door's receive path over TLS: a burst of many small QoS 0/1 messages and
a few large ones all arrive, and none is left waiting for the next packet.

Straight from Mosquitto every TLS record holds at most one packet; through a
TLS terminator that coalesces (tls_relay.py) one record holds hundreds. The
door reads a bounded number of packets per wake-up of its socket, so the
packets it left in the SSL object must be read without waiting for the socket
(aiomqtt's `sock.pending()` re-check, paho-mqtt issue #131): without it the
second case stalls on its last record until the next keepalive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from schemas.topics import OPERATOR, SNAPSHOT
from services.common.door import MqttDoor, Received
from services.common.pacing import wait_set
from services.common.settings import StageSettings
from tests.integration.cloud.cloud_broker import CLOUD_OPERATOR, CloudBroker
from tests.integration.cloud.cloud_probe import CloudProbe
from tests.integration.cloud.tls_relay import CoalescingTlsRelay

SMALL = 2000  # alternately QoS 0 and QoS 1
LARGE = {500: 256 * 1024, 1000: 1024 * 1024, 1500: 3 * 1024 * 1024}  # position: bytes
# A last burst that fits one TLS record yet holds more packets than the door
# reads per wake-up (library_seams.MAX_PACKETS_PER_WAKEUP).
TAIL = 300
ARRIVAL_TIMEOUT_S = 30.0  # a stall waits for the keepalive (600 s here), never this long


def payload(index: int) -> bytes:
    size = LARGE.get(index, 0)
    return b"%06d" % index + bytes([index % 251]) * size


@contextlib.asynccontextmanager
async def endpoint(through: str, cloud: CloudBroker) -> AsyncIterator[tuple[str, int]]:
    if through == "mosquitto":
        yield cloud.host, cloud.port
        return
    async with CoalescingTlsRelay(cloud) as relay:
        yield relay.host, relay.port
        # The case is only worth its name if records really held many packets.
        assert relay.largest_write > 16 * 1024


@pytest.mark.parametrize("through", ["mosquitto", "coalescing-tls-terminator"])
async def test_a_burst_over_tls_arrives_whole_without_a_stall(
    through: str,
    cloud: CloudBroker,
    cloud_probe: Callable[..., CloudProbe],
    root: str,
    gateway_id: str,
) -> None:
    publisher = cloud_probe()
    topic = SNAPSHOT.topic(root, camera="burst", label="m")
    arrived: dict[int, bytes] = {}
    everything = asyncio.Event()

    async def keep(message: Received[Any]) -> None:
        arrived[int(message.raw[:6])] = message.raw
        if len(arrived) == SMALL + TAIL:
            everything.set()

    async with endpoint(through, cloud) as (host, port):
        settings = StageSettings(
            mqtt_host=host,
            mqtt_port=port,
            mqtt_username=CLOUD_OPERATOR,
            mqtt_password=SecretStr(cloud.passwords[CLOUD_OPERATOR]),
            mqtt_tls_ca=str(cloud.pki.ca),
            mqtt_tls_cert=str(cloud.pki.client_cert),
            mqtt_tls_key=str(cloud.pki.client_key),
            gateway_id=gateway_id,
            keepalive_s=600,  # no PINGRESP may unstick a stalled read within the test
            max_queued_qos0=100_000,  # this test is about reading, not about dropping
        )
        door = MqttDoor(settings, OPERATOR, announce=False, root=root)
        door.subscribe(SNAPSHOT, keep, camera="burst")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(door.run())
            await asyncio.wait_for(door.connected.wait(), 10)
            burst = [(topic, payload(i), i % 2) for i in range(SMALL)]
            await asyncio.to_thread(publisher.publish_all, burst)
            await asyncio.sleep(0.3)  # the tail travels on its own, in one record
            tail = [(topic, payload(i), 0) for i in range(SMALL, SMALL + TAIL)]
            await asyncio.to_thread(publisher.publish_all, tail)
            await wait_set(everything, ARRIVAL_TIMEOUT_S)
            door.close()
    missing = sorted(set(range(SMALL + TAIL)) - arrived.keys())
    assert not missing, f"{len(missing)} never arrived, first {missing[:5]}, last {missing[-5:]}"
    assert all(arrived[i] == payload(i) for i in range(SMALL + TAIL))
    assert door.reconnects == 0
    assert door.metrics.counters.get("qos0_dropped", 0) == 0
