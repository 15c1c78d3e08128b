"""A publish awaiting its PUBACK when the connection drops fails at once, and
the door reconnects at once: aiomqtt alone waits for the PUBACK until the
operation timeout (10 s), holding the handler and with it the reconnect."""

from __future__ import annotations

import asyncio
import time

from schemas.gas import GasAverage
from schemas.topics import EVENT, GAS_AVERAGE, GAS_AVERAGE_RESULT
from services.common.door import MqttDoor, PublishFailed
from tests.harness.broker import MosquittoBroker
from tests.harness.events import co_high

OPERATION_TIMEOUT_S = 10.0


def _average() -> GasAverage:
    return GasAverage(
        source=GAS_AVERAGE, sensor="kitchen", gas="co", time_window_s=10, time_average=1.0,
        time_samples=1, count_window=1, count_average=1.0, count_samples=1, last_value=1.0,
        reading_id="r1",
    )  # fmt: skip


async def _publish_event(door: MqttDoor) -> PublishFailed | None:
    try:
        await door.publish(EVENT, co_high("kitchen-co-1"), source="kitchen")  # QoS 1
    except PublishFailed as error:
        return error
    return None


async def test_a_publish_fails_at_once_when_the_connection_drops(
    own_broker: MosquittoBroker,
) -> None:
    settings = own_broker.door_settings(
        GAS_AVERAGE,
        "lost",
        operation_timeout_s=OPERATION_TIMEOUT_S,
        reconnect_initial_s=0.1,
        reconnect_max_s=0.2,
    )
    door = MqttDoor(settings, GAS_AVERAGE)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(door.run())
        await asyncio.wait_for(door.connected.wait(), 10)
        own_broker.pause()  # the broker takes the PUBLISH and never answers...
        sending = tasks.create_task(_publish_event(door))
        await asyncio.sleep(0.3)
        own_broker.kill()  # ...then dies: the kernel closes the socket
        lost_at = time.monotonic()
        assert isinstance(await sending, PublishFailed)
        failed_after = time.monotonic() - lost_at
        own_broker.start()
        await asyncio.wait_for(door.connected.wait(), 10)
        back_after = time.monotonic() - lost_at
        await door.publish(GAS_AVERAGE_RESULT, _average(), sensor="kitchen")
        door.close()
    assert failed_after < 2.0, failed_after
    assert back_after < OPERATION_TIMEOUT_S / 2, back_after
