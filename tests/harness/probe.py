"""An MQTT client for tests, built on plain paho (independent of the door
under test): collects what it receives and publishes what a test needs."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from schemas.topics import STAGES
from tests.harness.broker import MosquittoBroker


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retained: bool
    at: float
    properties: dict[str, str]

    def json(self) -> dict[str, Any]:
        """The payload as a JSON object."""
        value = orjson.loads(self.payload)
        assert isinstance(value, dict), f"{self.topic}: not a JSON object: {self.payload[:60]!r}"
        return value


def wait_until(
    received: Callable[[Callable[[Seen], bool]], list[Seen]],
    where: Callable[[Seen], bool],
    count: int,
    timeout_s: float,
    label: str = "",
) -> list[Seen]:
    """Poll `received(where)` until it holds `count` messages, or fail saying what came."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = received(where)
        if len(found) >= count:
            return found
        time.sleep(0.02)
    found = received(where)
    topics = [(m.topic, m.payload[:60]) for m in received(lambda _: True)]
    raise AssertionError(f"{label}wanted {count}, got {len(found)} in {timeout_s} s: {topics}")


def new_properties(packet_type: int) -> Properties:
    """Empty MQTT 5 properties for `packet_type` (paho's `Properties` is
    untyped: this is the one place tests construct it)."""
    return Properties(packet_type)  # type: ignore[no-untyped-call]


class MakeProbe(Protocol):
    """The `probe` fixture: connects a new probe as `user`."""

    def __call__(self, user: str = "operator", password: str | None = None) -> Probe: ...


class Watch(Protocol):
    """The `watch` fixture: an operator subscribed to these topics of the test's tree."""

    def __call__(self, *topics: str) -> Probe: ...


class ConnectRefused(Exception):
    pass


class PahoCollector:
    """The plumbing every test client shares: a plain paho MQTT 5 client that
    collects what it receives. A refused CONNECT sets `refused`; a subclass
    that `_waits_through_refusals` keeps waiting (paho retries) instead."""

    _label = ""
    _waits_through_refusals = False

    def __init__(self, client_id: str) -> None:
        self.messages: list[Seen] = []
        self.refused: str | None = None
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    def _connect(self, host: str, port: int, timeout_s: float, **options: Any) -> bool:
        """Connect and start paho's loop; whether CONNACK came within `timeout_s`."""
        self._client.connect(host, port, keepalive=30, **options)
        self._client.loop_start()
        return self._connected.wait(timeout_s)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self.refused = str(reason_code)
            if self._waits_through_refusals:
                return
        else:
            self._on_accepted(client)
        self._connected.set()

    def _on_accepted(self, client: mqtt.Client) -> None:
        """Called on every accepted CONNECT (a subclass subscribes again here)."""

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        pairs = getattr(message.properties, "UserProperty", None) or []
        seen = Seen(
            message.topic, bytes(message.payload), bool(message.retain), time.time(), dict(pairs)
        )
        with self._lock:
            self.messages.append(seen)

    def received(self, where: Callable[[Seen], bool] = lambda _: True) -> list[Seen]:
        with self._lock:
            return [m for m in self.messages if where(m)]

    def wait_for(
        self, where: Callable[[Seen], bool], count: int = 1, timeout_s: float = 10.0
    ) -> list[Seen]:
        return wait_until(self.received, where, count, timeout_s, label=self._label)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class Probe(PahoCollector):
    def __init__(
        self,
        broker: MosquittoBroker,
        user: str | None,
        password: str | None = None,
        *,
        client_id: str | None = None,
    ) -> None:
        """A stage `user` without a password connects as a new identity with
        that stage's role (the broker binds each to its own client id); with a
        password, as the stage's own identity and client id."""
        if user in STAGES and password is None:
            user = broker.identity(user)
        if client_id is None:
            client_id = user if user is not None and user != "operator" else None
        super().__init__(client_id or f"probe-{uuid.uuid4().hex[:8]}")
        self.username = user
        self.publish_codes: dict[int, int] = {}
        if user is not None:  # None: an anonymous client
            self._client.username_pw_set(
                user, password if password is not None else broker.passwords.get(user, "")
            )
        self._client.on_publish = self._on_publish
        if not self._connect(broker.host, broker.port, 10) and self.refused is None:
            raise TimeoutError("probe did not connect")
        if self.refused is not None:
            self.close()
            raise ConnectRefused(self.refused)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        self.publish_codes[mid] = reason_code.value

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        granted: list[object] = []

        def on_subscribe(
            client: mqtt.Client,
            userdata: object,
            mid: int,
            reason_codes: list[ReasonCode],
            properties: Properties,
        ) -> None:
            granted.extend(reason_codes)
            done.set()

        self._client.on_subscribe = on_subscribe
        self._client.subscribe(topic, qos)
        if not done.wait(10):
            raise TimeoutError(f"no SUBACK for {topic}")
        self.last_subscribe_codes = granted

    def publish(
        self,
        topic: str,
        payload: bytes | str | dict[str, Any],
        *,
        qos: int = 1,
        retain: bool = False,
        user_properties: dict[str, str] | None = None,
    ) -> int | None:
        """Publish; at QoS 1 returns the PUBACK reason code (0 success, 135 denied)."""
        if isinstance(payload, dict):
            payload = orjson.dumps(payload)
        properties = None
        if user_properties:
            properties = new_properties(PacketTypes.PUBLISH)
            properties.UserProperty = list(user_properties.items())
        info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if qos == 0:
            return None
        info.wait_for_publish(10)
        deadline = time.monotonic() + 5
        while info.mid not in self.publish_codes and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.publish_codes.get(info.mid)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def connected(self) -> bool:
        return bool(self._client.is_connected())


class _Closable(Protocol):
    def close(self) -> None: ...


ClosableT = TypeVar("ClosableT", bound=_Closable)
MakeParams = ParamSpec("MakeParams")


@contextlib.contextmanager
def each_closed(
    make: Callable[MakeParams, ClosableT],
) -> Iterator[Callable[MakeParams, ClosableT]]:
    """`make`, and everything it made closed when the block ends: the body
    of every fixture that hands a test a probe factory."""
    made: list[ClosableT] = []

    def tracked(*args: MakeParams.args, **kwargs: MakeParams.kwargs) -> ClosableT:
        thing = make(*args, **kwargs)
        made.append(thing)
        return thing

    try:
        yield tracked
    finally:
        for thing in made:
            thing.close()


@contextlib.contextmanager
def probes_on(broker: MosquittoBroker) -> Iterator[MakeProbe]:
    """The body of a probe fixture: probes of `broker`, closed when the block ends."""

    def make(user: str = "operator", password: str | None = None) -> Probe:
        return Probe(broker, user, password)

    with each_closed(make) as tracked:
        yield tracked
