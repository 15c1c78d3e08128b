"""The door never sends a packet the broker refuses (issue 13.5): it reads the
broker's Maximum Packet Size from the CONNACK and refuses locally (TooLarge)
what would not fit, or what is over the topic's `max_bytes`, keeping its
connection; a message exactly at the limit is delivered."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from schemas.topics import CAMERA_CAPTURE, FRAME
from services.common.door import MqttDoor, TooLarge
from tests.harness.broker import MosquittoBroker
from tests.harness.probe import MakeProbe

BROKER_MAX_PACKET = 4 * 1024 * 1024  # broker/mosquitto.conf max_packet_size


async def test_publishes_at_the_broker_limit_arrive_and_over_it_are_refused_locally(
    broker: MosquittoBroker, probe: MakeProbe, gateway_id: str, root: str
) -> None:
    watcher = probe("object-detector")  # the frame topic's subscriber
    watcher.subscribe(f"{root}/camera/+/frame", qos=0)
    settings = broker.door_settings(CAMERA_CAPTURE, gateway_id)
    door = MqttDoor(settings, CAMERA_CAPTURE)
    # The frame topic with a limit above the broker's: only the broker's counts.
    unbounded = dataclasses.replace(FRAME, max_bytes=16 * 1024 * 1024)
    properties = {"seq": "1", "capture_ts": "1.0", "width": "10", "height": "10"}
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(door.run())
        await asyncio.wait_for(door.connected.wait(), 10)
        limit = door.payload_limit(unbounded, user_properties=properties, camera="big")
        assert BROKER_MAX_PACKET - 200 < limit < BROKER_MAX_PACKET
        with pytest.raises(TooLarge, match="maximum packet size"):
            await door.publish(
                unbounded, bytes(limit + 1), user_properties=properties, camera="big"
            )
        await door.publish(unbounded, bytes(limit), user_properties=properties, camera="big")
        # The topic's own limit, which leaves room for topic and properties.
        assert FRAME.max_bytes <= BROKER_MAX_PACKET - 64 * 1024
        assert door.payload_limit(FRAME, user_properties=properties, camera="big") == (
            FRAME.max_bytes
        )
        with pytest.raises(TooLarge, match="topic frame"):
            await door.publish(FRAME, bytes(FRAME.max_bytes + 1), camera="big")
        await door.publish(FRAME, b"small", user_properties=properties, camera="big")
        found = await asyncio.to_thread(watcher.wait_for, lambda m: True, 2, 15.0)
        assert door.reconnects == 0, "a refused message cost the connection"
        assert door.metrics.counters["too_large"] == 2
        door.close()
    assert [len(m.payload) for m in found] == [limit, 5]
