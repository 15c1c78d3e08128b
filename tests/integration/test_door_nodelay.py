"""The door's connection has TCP_NODELAY (services/common/library_seams.no_delay):
paho and aiomqtt leave Nagle's algorithm on, and a stage's PUBACK followed by
the PUBLISH it caused then waited for the broker's delayed ACK (40 ms), which
the deployer's first state after every request paid."""

from __future__ import annotations

import asyncio
import socket

from schemas.topics import GAS_AVERAGE
from services.common.door import MqttDoor
from tests.harness.broker import MosquittoBroker


async def test_the_doors_socket_sends_small_packets_at_once(broker: MosquittoBroker) -> None:
    door = MqttDoor(broker.door_settings(GAS_AVERAGE, "nodelay"), GAS_AVERAGE)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(door.run())
        await asyncio.wait_for(door.connected.wait(), 10)
        client = door._client  # noqa: SLF001 - the connection itself, to read its socket
        assert client is not None
        sock = client._client.socket()  # noqa: SLF001 - paho's client inside aiomqtt's
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        door.close()
