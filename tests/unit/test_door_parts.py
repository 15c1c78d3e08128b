"""Parts of the MQTT door that need no broker."""

from __future__ import annotations

import asyncio
import random
import socket
from dataclasses import dataclass

import aiomqtt
import pytest
from pydantic import ValidationError

from schemas.gas import GasReading
from services.common.backoff import Backoff
from services.common.dedup import SeenIds
from services.common.door import describe_validation_error
from services.common.library_seams import (
    YIELD_EVERY,
    DrainingClient,
    bounded_queue_type,
    incoming_queue,
)
from services.common.own_status import OwnStatus
from services.common.settings import StageSettings
from services.common.stage_metrics import StageMetrics


@dataclass
class _Message:
    qos: int
    name: str


async def test_qos0_is_bounded_by_dropping_the_oldest_and_qos1_is_never_dropped() -> None:
    metrics = StageMetrics()
    queue = bounded_queue_type(3, metrics)()
    for index in range(10):
        queue.put_nowait(_Message(0, f"f{index}"))
        queue.put_nowait(_Message(1, f"r{index}"))
    held = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [m.name for m in held if m.qos == 1] == [f"r{i}" for i in range(10)]
    assert [m.name for m in held if m.qos == 0] == ["f7", "f8", "f9"]
    assert metrics.counters["qos0_dropped"] == 7
    assert queue.empty()
    getter = asyncio.ensure_future(queue.get())
    queue.put_nowait(_Message(1, "late"))
    assert (await asyncio.wait_for(getter, 1)).name == "late"


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(0.2, 5.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(12)]
    assert all(0.1 <= d <= 5.0 for d in delays)
    assert max(delays[-4:]) > 2.5  # reached the cap's range
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay() <= 0.2


def test_seen_ids_forgets_the_oldest_beyond_capacity() -> None:
    seen = SeenIds(capacity=2)
    assert seen.first_time("a") and seen.first_time("b")
    assert not seen.first_time("a")
    assert seen.first_time("c")  # evicts b, the least recently seen
    assert seen.first_time("b") and len(seen) == 2


def test_validation_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        GasReading.model_validate_json(b'{"source": "x", "sensor": "k", "gas": "co", "value": -2}')
    assert describe_validation_error(caught.value).startswith("value: ")


def test_instance_hostname_gives_each_replica_its_own_client_suffix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "3f2a9c1b7d4e")
    monkeypatch.setenv("EDGEGW_INSTANCE", "hostname")
    assert StageSettings().instance == "3f2a9c1b7d4e"
    monkeypatch.setattr(socket, "gethostname", lambda: "gw 1/lobby")
    assert StageSettings().instance == "gw-1-lobby"
    monkeypatch.setenv("EDGEGW_INSTANCE", "2")
    assert StageSettings().instance == "2"


def test_an_empty_broker_host_is_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEGW_MQTT_HOST", "")
    with pytest.raises(ValidationError, match="mqtt_host"):
        StageSettings()


def _queued(index: int) -> aiomqtt.Message:
    return aiomqtt.Message(f"t/{index}", b"x", qos=1, retain=False, mid=index + 1, properties=None)


async def test_queued_messages_come_in_order_and_the_loop_still_gets_turns() -> None:
    client = DrainingClient("localhost")
    for index in range(200):
        incoming_queue(client).put_nowait(_queued(index))
    seen: list[aiomqtt.Message] = []
    loop_turn_at: list[int] = []
    asyncio.get_running_loop().call_soon(lambda: loop_turn_at.append(len(seen)))
    messages = client.messages
    for _ in range(200):
        seen.append(await messages.__anext__())
    assert [message.mid for message in seen] == list(range(1, 201))
    # No task per message, yet no starving the loop while a backlog is handed over.
    assert loop_turn_at and loop_turn_at[0] < YIELD_EVERY


async def test_an_empty_queue_waits_for_a_message_or_the_disconnect() -> None:
    client = DrainingClient("localhost")
    waiting = asyncio.ensure_future(client.messages.__anext__())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    incoming_queue(client).put_nowait(_queued(7))
    assert (await asyncio.wait_for(waiting, 1)).mid == 8
    waiting = asyncio.ensure_future(client.messages.__anext__())
    await asyncio.sleep(0)
    # What aiomqtt does when paho reports the connection lost.
    client._disconnected.set_exception(ConnectionError("gone"))  # noqa: SLF001
    with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
        await asyncio.wait_for(waiting, 1)


def test_own_status_answers_only_another_instance_saying_offline() -> None:
    settings = StageSettings(mqtt_password="x", gateway_id="gw", instance="a")
    own = OwnStatus(settings, "object-detector", "edgegw/gw")
    assert own.topic == "edgegw/gw/status/object-detector"
    assert own.user_properties == {"instance": "a"}
    assert own.calls_for_online(b"offline", retained=False, said_by="b")  # a replica left
    assert own.calls_for_online(b"", retained=False, said_by=None)  # cleared by someone
    assert not own.calls_for_online(b"online", retained=False, said_by="b")
    assert not own.calls_for_online(b"offline", retained=False, said_by="a")  # its own word
    assert not own.calls_for_online(b"offline", retained=True, said_by="b")  # from before
