"""The library internals services/common/library_seams.py relies on: the
versions it was written against are the ones pinned and installed, and every
private name it uses still exists there."""

from __future__ import annotations

import asyncio
import tomllib
from importlib.metadata import version
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho

from services.common.library_seams import DrainingClient, IncomingQueue

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def pinned() -> dict[str, str]:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return dict(d.split("==", 1) for d in dependencies if "==" in d)


def test_the_seamed_libraries_are_pinned_exactly_to_the_installed_versions() -> None:
    pins = pinned()
    assert pins.keys() >= {"aiomqtt", "paho-mqtt"}
    assert {name: version(name) for name in ("aiomqtt", "paho-mqtt")} == {
        name: pins[name] for name in ("aiomqtt", "paho-mqtt")
    }


async def test_the_private_names_the_seams_use_still_exist() -> None:
    client = DrainingClient("localhost", queue_type=IncomingQueue)
    # aiomqtt: what DrainingClient mirrors and QueuedFirstMessages reads.
    aiomqtt_names = ("_client", "_queue", "_loop", "_disconnected", "_misc_task", "_misc_loop")
    assert all(hasattr(client, name) for name in aiomqtt_names)
    assert "_on_socket_open" in vars(aiomqtt.Client)
    # Our _on_socket_open is the one paho calls back.
    assert client._client.on_socket_open == client._on_socket_open  # noqa: SLF001 - the seam
    # Our _on_connect (keeping the CONNACK's properties) is the one paho calls back.
    assert "_on_connect" in vars(aiomqtt.Client)
    assert client._client.on_connect == client._on_connect  # noqa: SLF001 - the seam
    # paho: the body of loop_read, and the manual-ack API aiomqtt does not expose.
    paho_names = ("_packet_read", "_loop_rc_handle", "manual_ack_set", "ack", "socket")
    assert all(callable(getattr(paho.Client, name, None)) for name in paho_names)
    # asyncio.Queue: the overridable hooks and the `_queue` its qsize() reads.
    queue = IncomingQueue()
    assert all(name in vars(asyncio.Queue) for name in ("_init", "_put", "_get"))
    queue.put_nowait(aiomqtt.Message("t", b"", qos=0, retain=False, mid=0, properties=None))
    assert queue.qsize() == 1 and queue.qos0_held == 1
