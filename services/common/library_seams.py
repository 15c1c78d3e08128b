"""Every place edgegw reaches into a library's internals, in one module.

Pinned exactly in pyproject.toml, because everything here relies on them:
aiomqtt==2.5.1 and paho-mqtt==2.2.0; the asyncio.Queue hooks are CPython's.
Each private access carries `# noqa: SLF001` and names the upstream issue or
limitation it waits for; when a pin moves, re-read this module against the new
sources first (tests/unit/test_door_parts.py, test_paho_speedups.py and
tests/integration/cloud/test_door_over_tls.py cover each seam).

- Manual acknowledgement: aiomqtt has no API for it yet.
- `DrainingClient`: reads every packet the socket holds per wake-up, and the
  ones a TLS record left decrypted in the SSL object.
- `QueuedFirstMessages`: hands queued messages over without a task each.
- `IncomingQueue`: aiomqtt's incoming queue, bounded per QoS.
- `install_paho_speedups`: cheaper MQTT 5 property objects for paho.
- `broker_maximum_packet_size`: the CONNACK's Maximum Packet Size, which
  aiomqtt drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt import properties as paho_properties
from paho.mqtt.packettypes import PacketTypes

from services.common.stage_metrics import StageMetrics

log = logging.getLogger(__name__)

# -- manual acknowledgement ----------------------------------------------------
# aiomqtt 2.5 builds its paho client with automatic acks and offers no switch:
# empicano/aiomqtt#345 (PR #346 adds one). Until then the door uses paho 2's
# public manual-ack API on aiomqtt's private paho client.


def enable_manual_acks(client: aiomqtt.Client) -> None:
    """Switch to acknowledging QoS 1 messages only through `acknowledge()`."""
    client._client.manual_ack_set(True)  # noqa: SLF001 - aiomqtt#345


def acknowledge(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Send the PUBACK of a QoS 1 message (nothing for QoS 0)."""
    client._client.ack(message.mid, message.qos)  # noqa: SLF001 - aiomqtt#345


# -- the receive path ------------------------------------------------------------

MAX_PACKETS_PER_WAKEUP = 256
# Queued messages handed over before the iterator yields to the loop once.
YIELD_EVERY = 64


def connection_lost(client: aiomqtt.Client) -> asyncio.Future[None]:
    """A future that completes when the client's connection is lost.

    aiomqtt 2.5 keeps it private and a pending publish keeps waiting for its
    PUBACK until the timeout after a disconnection (aiomqtt PR #287 discusses
    failing publishes on disconnection). Callers must never cancel it.
    """
    lost: asyncio.Future[None] = client._disconnected  # noqa: SLF001 - aiomqtt PR #287
    return lost


def incoming_queue(client: aiomqtt.Client) -> asyncio.Queue[aiomqtt.Message]:
    """The queue aiomqtt's paho callback fills (its `queue_type`)."""
    # aiomqtt keeps it private; `len(client.messages)` is the only public view.
    # No upstream issue: a `messages` iterator without a task per message
    # (below) would make this unnecessary.
    queue: asyncio.Queue[aiomqtt.Message] = client._queue  # noqa: SLF001
    return queue


class QueuedFirstMessages(aiomqtt.client.MessagesIterator):
    """aiomqtt's message iterator, without a task per message while some wait.

    aiomqtt's `__anext__` creates a task for `queue.get()` and `asyncio.wait`s
    it against the disconnect future, for every message. When the queue
    already holds messages that costs two loop iterations for nothing: the
    message is handed over at once instead, as aiomqtt itself would (it
    returns a queued message even once disconnected). An empty queue takes
    aiomqtt's path, so waiting and disconnects behave exactly as before.
    """

    def __init__(self, client: aiomqtt.Client) -> None:
        super().__init__(client)
        self._without_yield = 0

    async def __anext__(self) -> aiomqtt.Message:
        queue = incoming_queue(self._client)
        if queue.qsize():
            self._without_yield += 1
            if self._without_yield >= YIELD_EVERY:
                # Let the loop run (socket reads, ack writes, other tasks) now
                # and then even if every handler returns without awaiting.
                self._without_yield = 0
                await asyncio.sleep(0)
            if queue.qsize():
                return queue.get_nowait()
        self._without_yield = 0
        return await super().__anext__()


def _tls_bytes_pending(sock: Any) -> bool:
    """Whether an SSL socket holds decrypted bytes not yet read (never for TCP)."""
    pending = getattr(sock, "pending", None)
    return pending is not None and pending() > 0


class DrainingClient(aiomqtt.Client):
    """aiomqtt's client, reading every packet the socket holds per wake-up.

    aiomqtt 2.5 reads one packet per readable event (paho's `loop_read`
    replaces its `max_packets` argument by the number of messages in flight),
    so each message costs an event-loop iteration; draining the socket
    measured ~20 % more QoS 1 messages/s here (tests/bench/gas_throughput.py).
    Its `messages` hand queued messages over without a task each
    (`QueuedFirstMessages`): a counting consumer went from 11 700 to 17 300
    msg/s. No upstream issue asks for either yet.

    Mirrors aiomqtt 2.5.1's private `_on_socket_open` (and with it the private
    `_loop`, `_disconnected`, `_misc_task` and `_misc_loop` it uses) with a
    bounded loop over paho's private `_packet_read` / `_loop_rc_handle`, the
    body of paho's `loop_read`.

    TLS: a TLS record can carry many packets (not from Mosquitto, which writes
    one record per packet, but through TLS terminators that coalesce). Once
    the loop has read its share, the rest of a record sits decrypted in the
    SSL object, where the socket's readiness never reports it; like aiomqtt's
    own `sock.pending()` re-check (eclipse-paho/paho.mqtt.python#131) the
    drain then runs again at the next loop turn instead of waiting for more
    bytes. Without it tests/integration/cloud/test_door_over_tls.py stalls
    with the last 44 to 210 of its 300 tail messages unread (runs here).
    """

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        no_delay(sock)

        def drain() -> None:
            try:
                for _ in range(MAX_PACKETS_PER_WAKEUP):
                    rc = client._packet_read()  # noqa: SLF001 - no public bounded loop_read
                    if rc > 0:
                        client._loop_rc_handle(rc)  # noqa: SLF001 - as paho's loop_read
                        return
                    if rc == paho.MQTT_ERR_AGAIN:
                        break
                if client.socket() is sock and _tls_bytes_pending(sock):
                    self._loop.call_soon(drain)  # paho.mqtt.python#131
            except Exception as exc:
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def create_misc_task() -> None:
            self._misc_task = self._loop.create_task(self._misc_loop())

        # paho calls this from aiomqtt's connect thread: hence call_soon_threadsafe.
        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), drain)
        self._loop.call_soon_threadsafe(create_misc_task)

    @property
    def messages(self) -> QueuedFirstMessages:
        return QueuedFirstMessages(self)

    # aiomqtt 2.5.1's private `_on_connect` (paho's on_connect callback)
    # ignores the CONNACK's properties: empicano/aiomqtt#362 asks to return
    # them from `__aenter__`. Until then they are kept here on the way through.
    connack_properties: Any = None

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Any = None,
    ) -> None:
        self.connack_properties = properties
        super()._on_connect(client, userdata, flags, reason_code, properties)


def no_delay(sock: Any) -> None:
    """TCP_NODELAY on the connection, which neither paho nor aiomqtt sets.

    Without it the second of two small packets written back to back (a PUBACK
    for a message just handled, then a PUBLISH it caused) waits in Nagle's
    buffer for the broker's delayed TCP ACK: 40 ms on Linux. Measured on the
    deployer, whose first state after a request took 42-44 ms to publish and
    then 1-2 ms. A socket that is not TCP (a websocket wrapper) is left as is."""
    with contextlib.suppress(AttributeError, OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def broker_maximum_packet_size(client: aiomqtt.Client) -> int | None:
    """The largest packet the broker accepts, from its CONNACK (MQTT 5
    Maximum Packet Size); None when it stated none (the protocol's 256 MiB)."""
    properties = getattr(client, "connack_properties", None)
    size = getattr(properties, "MaximumPacketSize", None)
    return size if isinstance(size, int) and size > 0 else None


# -- the incoming queue ----------------------------------------------------------


class IncomingQueue(asyncio.Queue[Any]):
    """asyncio.Queue holding at most `max_qos0` QoS 0 messages.

    aiomqtt discards a message when its queue is full, which for a manually
    acknowledged QoS 1 message means it is never acknowledged and stalls until
    the next reconnect. So this queue never refuses a QoS 1 message — their
    number is already bounded by the MQTT 5 Receive Maximum we announce,
    because the broker sends no more unacknowledged ones than that — and
    bounds QoS 0 messages (frames, chunks) by dropping the oldest: for
    real-time data the newest matters.

    Built on asyncio.Queue's `_init` / `_put` / `_get` hooks, which CPython
    marks "overridable in subclasses" in its source (PriorityQueue and
    LifoQueue use them) but does not document: python/cpython#146366.
    """

    max_qos0 = 256
    metrics: StageMetrics | None = None

    def __init__(self, maxsize: int = 0) -> None:
        # aiomqtt passes maxsize; our bound is per QoS, so the asyncio one is off.
        super().__init__(maxsize=0)
        self.qos0_held = 0
        self.qos0_dropped = 0

    def _init(self, maxsize: int) -> None:  # cpython#146366
        # asyncio.Queue's qsize() and empty() read `_queue` directly.
        self._queue: deque[Any] = deque()

    def _put(self, item: Any) -> None:  # cpython#146366
        self._queue.append(item)
        if item.qos == 0:
            self.qos0_held += 1
            if self.qos0_held > self.max_qos0:
                self._drop_oldest_qos0()

    def _get(self) -> Any:  # cpython#146366
        item = self._queue.popleft()
        if item.qos == 0:
            self.qos0_held -= 1
        return item

    def _drop_oldest_qos0(self) -> None:
        for index, held in enumerate(self._queue):
            if held.qos == 0:
                del self._queue[index]
                self.qos0_held -= 1
                self.qos0_dropped += 1
                if self.metrics is not None:
                    self.metrics.count("qos0_dropped")
                return


def bounded_queue_type(max_qos0: int, metrics: StageMetrics) -> type[IncomingQueue]:
    """A queue class for aiomqtt's `queue_type` with this stage's bound and counters."""
    return type("StageIncomingQueue", (IncomingQueue,), {"max_qos0": max_qos0, "metrics": metrics})


# -- paho's MQTT 5 properties ----------------------------------------------------
# Why: paho decodes every MQTT 5 PUBLISH into a new `Properties`, whose
# `__init__` rebuilds three lookup tables (27 names, 27 type entries) and whose
# `unpack` first calls `clear()`, which scans all 27 names with `str.replace`
# and `hasattr`. Profiled on a QoS 1 consumer that only counts messages, that
# was its largest single cost; with the tables shared, the same consumer takes
# 11 800 msg/s instead of 7 100 on this machine, 40 % less time per message
# (`make bench` measures it in every run: `gas_throughput.door_only_msgs_per_s`).
#
# What changes, process-wide: `__init__` points the instance at one copy of the
# tables paho itself built (same content, shared instead of rebuilt), `clear`
# drops only the attributes that are set, and the name <-> identifier lookups
# become dict lookups. Packing, unpacking and validation are paho's own,
# untouched. tests/unit/test_paho_speedups.py checks byte-for-byte equality
# with the stock class. If paho's `Properties` no longer looks as expected,
# nothing is installed and paho runs as shipped. No private member is touched
# (the four methods and the tables are public attributes), but it is a seam
# all the same: no upstream issue asks paho to share its tables yet.

_TABLES = ("packetType", "types", "names", "properties")
_STOCK: dict[str, Callable[..., Any]] = {}


def _stock_tables() -> tuple[list[str], dict[str, int], dict[int, Any]] | None:
    """paho's own tables, from a stock instance; None if they are not as expected.
    Plain containers like paho's (a read-only proxy would break copy.deepcopy);
    paho only ever reads them."""
    init: Callable[..., None] = _STOCK.get("__init__", paho_properties.Properties.__init__)
    probe = object.__new__(paho_properties.Properties)
    init(probe, PacketTypes.PUBLISH)
    state = vars(probe)
    if set(state) != set(_TABLES):
        return None
    types, names, props = state["types"], state["names"], state["properties"]
    if not (isinstance(types, list) and isinstance(names, dict) and isinstance(props, dict)):
        return None
    return types, names, props


def install_paho_speedups() -> bool:
    """Install the cheaper methods (idempotent). False: left paho as shipped."""
    cls = paho_properties.Properties
    if _STOCK:
        return True
    tables = _stock_tables()
    if tables is None:
        log.warning("paho Properties changed shape; MQTT 5 property speed-ups not installed")
        return False
    types, names, props = tables
    ident_of = {name.replace(" ", ""): ident for name, ident in names.items()}
    name_of = {ident: name for name, ident in names.items()}
    compressed = frozenset(ident_of)

    def __init__(self: Any, packetType: int) -> None:
        state = self.__dict__
        state["packetType"] = packetType
        state["types"], state["names"], state["properties"] = types, names, props

    def clear(self: Any) -> None:
        state = self.__dict__
        for name in state.keys() & compressed:
            del state[name]

    def getIdentFromName(self: Any, compressedName: str) -> int:
        return ident_of.get(compressedName, -1)

    def getNameFromIdent(self: Any, identifier: int) -> str | None:
        return name_of.get(identifier)

    replacements = {
        "__init__": __init__,
        "clear": clear,
        "getIdentFromName": getIdentFromName,
        "getNameFromIdent": getNameFromIdent,
    }
    for attribute, method in replacements.items():
        _STOCK[attribute] = getattr(cls, attribute)
        setattr(cls, attribute, method)
    return True


def stock_method(name: str) -> Callable[..., Any]:
    """paho's original method (for the equivalence tests)."""
    return _STOCK.get(name) or getattr(paho_properties.Properties, name)
