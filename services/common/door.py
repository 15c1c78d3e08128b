"""The MQTT door: the one place that talks to the broker.

One connection per stage, MQTT 5, the stage's own credentials, a retained
`offline` last will and `online` on every connect, one reconnect loop with
exponential backoff and jitter, resubscription on every connect, persistent
sessions for QoS 1 consumers, validation on receipt with dead letters for
anything invalid, and QoS 1 acknowledgement only after the handler returned.
Replicas of a stage share its retained status: each says `online` again when
another one's will or stop says `offline`.
The client's connect options are built in `stage_client`, and the routing
table and payload checks live in `subscriptions`.

Acknowledge-after-handling: aiomqtt 2.5 builds its paho client with automatic
acknowledgement, so the door switches the paho client to manual acks
(`manual_ack_set`, public paho 2 API) and sends the PUBACK itself once the
handler has returned (or the message has been dead-lettered). A message whose
handler had not finished when the connection dropped is not acknowledged: the
broker redelivers it from the persistent session, and consumers deduplicate on
the message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar, overload

import aiomqtt
from pydantic import BaseModel

from schemas.envelope import Envelope
from schemas.service import OFFLINE, ONLINE, DeadLetter
from schemas.topics import DEAD_LETTER, STAGES, STATUS, TopicSpec
from services.common.backoff import Backoff
from services.common.library_seams import (
    acknowledge,
    broker_maximum_packet_size,
    connection_lost,
)
from services.common.messages import Handler as Handler
from services.common.messages import InvalidMessage as InvalidMessage
from services.common.messages import LeaveUnacknowledged as LeaveUnacknowledged
from services.common.messages import PublishFailed as PublishFailed
from services.common.messages import Received as Received
from services.common.messages import describe_validation_error as describe_validation_error
from services.common.own_status import OwnStatus, ignore
from services.common.pacing import wait_set
from services.common.packet_size import TooLarge as TooLarge
from services.common.packet_size import largest_payload, oversize
from services.common.settings import StageSettings
from services.common.stage_client import (
    build_client,
    credentials_refused,
    publish_properties,
    session_taken_over,
    status_properties,
    user_properties_of,
)
from services.common.stage_metrics import StageMetrics
from services.common.subscriptions import Subscriptions, decode_payload

log = logging.getLogger(__name__)
P = TypeVar("P")

EXCERPT_BYTES = 200
ACK_BATCH = 32  # well under the Receive Maximum, so the broker never stalls


class MqttDoor:
    """Connection, subscriptions, dispatch and publishing of one stage.

    Register handlers with `subscribe()` before `run()`; `run()` returns after
    `close()`, having finished the message in hand and published `offline`.
    """

    def __init__(
        self,
        settings: StageSettings,
        user: str,
        *,
        announce: bool = True,
        root: str | None = None,
        side: str = "aux",
    ) -> None:
        self.settings = settings
        self.user = user
        self.root = root or settings.root
        self.metrics = StageMetrics()
        self.connected = asyncio.Event()
        self.credentials_refused = asyncio.Event()
        self.reconnects = 0
        self._announce = announce
        # A stage's client id is bound to its identity by the broker (a side
        # connection, `announce` off, has its own `.<side>` one); the
        # operator's is not: random.
        bound = user in STAGES
        own_side = "" if announce else side
        self._identity = settings.mqtt_identity(user, side=own_side if bound else "")
        self._client_id = (
            settings.mqtt_client_id(user, side=own_side)
            if bound
            else f"{self._identity}-{uuid.uuid4().hex[:10]}"
        )
        self._subscriptions = Subscriptions(user, self.root)
        self._client: aiomqtt.Client | None = None
        self._epoch = 0
        self._stop = asyncio.Event()
        self._intake_closed = False
        self._dispatching = False
        self._own_status: OwnStatus | None = None  # set by run() for announcing stages
        self._status_properties = publish_properties(status_properties(settings))
        self._broker_max_packet: int | None = None  # from the CONNACK

    # -- registration --------------------------------------------------------

    def subscribe(
        self,
        spec: TopicSpec[P],
        handler: Handler[P],
        *,
        share_group: str | None = None,
        **params: str,
    ) -> None:
        """Route messages of `spec` (parameters not given are wildcards)."""
        self._subscriptions.add(spec, handler, share_group=share_group, params=params)

    def subscribe_any_size(self, spec: TopicSpec[P], handler: Handler[P], **params: str) -> None:
        """`subscribe`, but payloads over the (TEXT or RAW) topic's limit reach
        the handler too, which answers them itself."""
        self._subscriptions.add(spec, handler, share_group=None, params=params, take_oversize=True)

    @property
    def _persistent(self) -> bool:
        return self._subscriptions.any_qos1 and self._announce

    # -- publishing ----------------------------------------------------------

    @overload
    async def publish(
        self,
        spec: TopicSpec[bytes],
        payload: bytes | str,
        *,
        user_properties: dict[str, str] | None = None,
        retain: bool | None = None,
        wait_s: float | None = None,
        **params: str,
    ) -> None: ...

    @overload
    async def publish(
        self,
        spec: TopicSpec[P],
        payload: P,
        *,
        user_properties: dict[str, str] | None = None,
        retain: bool | None = None,
        wait_s: float | None = None,
        **params: str,
    ) -> None: ...

    async def publish(
        self,
        spec: TopicSpec[Any],
        payload: object,
        *,
        user_properties: dict[str, str] | None = None,
        retain: bool | None = None,
        wait_s: float | None = None,
        **params: str,
    ) -> None:
        """Publish on `spec` what it carries (a str on a bytes topic is sent
        UTF-8; None on a retained JSON topic clears it); waits for the
        broker's PUBACK at QoS 1.

        Raises PublishFailed if not connected within `wait_s` or unconfirmed,
        TooLarge (a PublishFailed) without sending when the message is over
        the topic's `max_bytes` or the broker's Maximum Packet Size.
        """
        if not spec.may_publish(self.user, params):
            raise PermissionError(f"{self.user} may not publish on {spec.name}")
        topic = spec.topic(self.root, **params)
        data = self._encode(spec, payload)
        retained = spec.retained if retain is None else retain
        self._refuse_oversize(spec, topic, data, user_properties)
        await self._send(topic, data, spec.qos, retained, user_properties, wait_s)
        self.metrics.count("published")

    def payload_limit(
        self, spec: TopicSpec[Any], *, user_properties: dict[str, str] | None = None, **params: str
    ) -> int:
        """The largest payload `publish` sends on this topic with these
        properties (the broker's limit counts once connected)."""
        topic = spec.topic(self.root, **params)
        return largest_payload(spec, topic, user_properties, self._broker_max_packet)

    def _refuse_oversize(
        self, spec: TopicSpec[Any], topic: str, data: bytes, user_properties: dict[str, str] | None
    ) -> None:
        """Raise TooLarge for what the topic or the broker would refuse: the
        broker would drop the connection, not just the message."""
        refusal = oversize(spec, topic, len(data), user_properties, self._broker_max_packet)
        if refusal is not None:
            self.metrics.count("too_large")
            log.warning(
                "message too large: not published",
                extra={"topic": topic, "bytes": refusal.size, "limit": refusal.limit},
            )
            raise refusal

    async def forward(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int,
        retain: bool,
        user_properties: dict[str, str] | None = None,
        wait_s: float | None = None,
    ) -> None:
        """Publish an already-encoded message on a topic taken from another broker.

        For the cloud bridge only: it relays messages the registry already
        checked on the gateway side; the receiving broker's ACL still applies.
        """
        await self._send(topic, payload, qos, retain, user_properties, wait_s)
        self.metrics.count("forwarded")

    async def _send(
        self,
        topic: str,
        data: bytes,
        qos: int,
        retain: bool,
        user_properties: dict[str, str] | None,
        wait_s: float | None,
    ) -> None:
        limit = wait_s if wait_s is not None else self.settings.operation_timeout_s
        try:
            async with asyncio.timeout(limit):
                await self.connected.wait()
                client = self._client
                if client is None:
                    raise PublishFailed(f"{topic}: not connected")
                publishing = client.publish(
                    topic,
                    data,
                    qos=qos,
                    retain=retain,
                    properties=publish_properties(user_properties),
                    timeout=limit,
                )
                await self._confirmed_unless_lost(client, publishing, topic)
        except TimeoutError as error:
            raise PublishFailed(f"{topic}: not confirmed within {limit} s") from error
        except aiomqtt.MqttError as error:
            raise PublishFailed(f"{topic}: {error}") from error

    @staticmethod
    async def _confirmed_unless_lost(
        client: aiomqtt.Client, publishing: Coroutine[Any, Any, None], topic: str
    ) -> None:
        """Fail at once when the connection drops before the PUBACK.

        aiomqtt 2.5 waits for a PUBACK until the timeout even after the
        connection is gone, holding the handler, so the consume loop (and with
        it the reconnect) waited ~10 s. Once the publish fails, the consume
        loop sees the lost connection and `run` reconnects. The
        lost-connection future is a library seam (`connection_lost`);
        `asyncio.wait` never cancels it.
        """
        lost = connection_lost(client)
        sending = asyncio.ensure_future(publishing)
        try:
            await asyncio.wait({sending, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sending.done():
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await sending
        if sending.cancelled():
            raise PublishFailed(f"{topic}: connection lost before the broker confirmed")
        sending.result()

    @staticmethod
    def _encode(spec: TopicSpec[Any], payload: object) -> bytes:
        if isinstance(payload, BaseModel):
            if not spec.carries(payload):
                raise TypeError(f"{spec.name} does not carry {type(payload).__name__}")
            assert isinstance(payload, Envelope)
            return payload.to_bytes()
        if isinstance(payload, str):
            return payload.encode()
        if payload is None:
            return b""  # an empty retained message clears the topic
        if not isinstance(payload, bytes):
            raise TypeError(f"{spec.name} does not carry {type(payload).__name__}")
        return payload

    async def dead_letter(self, topic: str, raw: bytes, reason: str) -> None:
        """Publish what was rejected and why; never raises."""
        self.metrics.count("dead_letters")
        log.warning("dead letter", extra={"topic": topic, "reason": reason})
        letter = DeadLetter(
            source=self.user,
            stage=self.user,
            topic=topic,
            reason=reason[:2000],
            payload_bytes=len(raw),
            excerpt=raw[:EXCERPT_BYTES].decode("utf-8", "replace"),
        )
        try:
            await self.publish(DEAD_LETTER, letter, stage=self.user)
        except (PublishFailed, PermissionError) as error:
            log.error("could not publish a dead letter", extra={"error": str(error)})

    # -- connection life -----------------------------------------------------

    def close_intake(self) -> None:
        """Stop handing messages to handlers (the first step of a shutdown).

        The message in hand is finished and acknowledged; later ones are left
        unacknowledged, so the broker keeps them for the next run. The
        connection stays up so workers can still publish.
        """
        self._intake_closed = True

    def close(self) -> None:
        """Ask `run()` to finish the message in hand, go offline and return."""
        self.close_intake()
        self._stop.set()

    async def run(self) -> None:
        self._watch_own_status()
        backoff = Backoff(self.settings.reconnect_initial_s, self.settings.reconnect_max_s)
        while not self._stop.is_set():
            delay: float | None = None
            try:
                async with self._make_client() as client:
                    backoff.reset()
                    await self._serve(client)
            except* aiomqtt.MqttCodeError as group:
                delay = self._connect_refused(group.exceptions[0])
            except* aiomqtt.MqttError as group:
                delay = self.report_lost_connection(group.exceptions[0])
            finally:
                self.connected.clear()
                self._client = None
            if self._stop.is_set():
                break
            await wait_set(self._stop, delay or backoff.next_delay())

    def _watch_own_status(self) -> None:
        """Receive this stage's own status (see `own_status`): by the stage's
        route if one covers it, else by a QoS 0 route of the door's."""
        if not self._announce or self._own_status is not None:
            return
        self._own_status = OwnStatus(self.settings, self.user, self.root)
        if self._subscriptions.match(self._own_status.topic) is None:
            params = {"stage": self.user}
            self._subscriptions.add(STATUS, ignore, share_group=None, params=params, qos=0)

    async def _say_online_again(self, own: OwnStatus, raw: bytes) -> None:
        try:
            await self.publish(STATUS, ONLINE, user_properties=own.user_properties, stage=self.user)
        except PublishFailed as error:
            log.warning("could not say online again", extra={"error": str(error)})
            return
        self.metrics.count("online_reasserted")
        log.info("another instance went offline: online again", extra={"said": raw[:16]})

    @property
    def identity(self) -> str:
        """The username this door logs in with."""
        return self._identity

    @property
    def client_id(self) -> str:
        return self._client_id

    def report_lost_connection(self, error: BaseException) -> float | None:
        """Report a lost connection; the wait before reconnecting, or None for
        the usual backoff."""
        if not session_taken_over(error):
            log.warning("broker connection lost", extra={"error": str(error)})
            return None
        return self._taken_over()

    def _taken_over(self) -> float:
        """Another connection with our client id took the session: say so (an
        ERROR, `degraded` health for the rest of this run) and wait before
        taking it back, instead of kicking each other in a loop."""
        self.metrics.count("session_taken_over")
        self.metrics.degraded = f"session taken over by another connection as {self._client_id}"
        log.error("session taken over", extra={"client_id": self._client_id})
        return self.settings.auth_retry_s

    def _connect_refused(self, error: BaseException) -> float | None:
        if session_taken_over(error):
            return self._taken_over()
        if credentials_refused(error):
            self.metrics.count("auth_refused")
            self.credentials_refused.set()
            log.error(
                "broker refused our credentials",
                extra={"user": self.user, "reason": str(error)},
            )
            return self.settings.auth_retry_s
        log.warning("broker error", extra={"error": str(error)})
        return None

    def _make_client(self) -> aiomqtt.Client:
        return build_client(
            self.settings,
            user=self._identity,
            client_id=self._client_id,
            persistent=self._persistent,
            will_topic=STATUS.topic(self.root, stage=self.user) if self._announce else None,
            metrics=self.metrics,
        )

    async def _serve(self, client: aiomqtt.Client) -> None:
        self._epoch += 1
        epoch = self._epoch
        if epoch > 1:
            self.reconnects += 1
        self._client = client
        # Kept across reconnects: a publish waiting for the next connect is
        # still checked against the last broker's word.
        self._broker_max_packet = broker_maximum_packet_size(client)
        filters = self._subscriptions.filters()
        if filters:
            await client.subscribe(filters)
        if self._announce:  # after subscribing: `online` means ready to receive
            status_topic = STATUS.topic(self.root, stage=self.user)
            await client.publish(
                status_topic, ONLINE, qos=1, retain=True, properties=self._status_properties
            )
        self.connected.set()
        log.info("connected", extra={"epoch": epoch, "client_id": self._client_id})
        async with asyncio.TaskGroup() as tasks:
            consumer = tasks.create_task(self._consume(client, epoch))
            stop_requested = tasks.create_task(self._stop.wait())
            await asyncio.wait({consumer, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
            if stop_requested.done():
                # Finish the message in hand; cancel only an idle consumer.
                if not self._dispatching:
                    consumer.cancel()
            else:
                stop_requested.cancel()
        if self._stop.is_set() and self._announce:
            status_topic = STATUS.topic(self.root, stage=self.user)
            await client.publish(
                status_topic, OFFLINE, qos=1, retain=True, properties=self._status_properties
            )

    async def _consume(self, client: aiomqtt.Client, epoch: int) -> None:
        handled: list[aiomqtt.Message] = []
        try:
            async for message in client.messages:
                if self._stop.is_set():
                    return
                if self._intake_closed:
                    self._acknowledge(client, handled, epoch)
                    continue  # unacknowledged: the broker redelivers it next run
                self._dispatching = True
                take = True
                try:
                    take = await self._dispatch(message)
                finally:
                    self._dispatching = False
                    if message.qos > 0 and take:
                        handled.append(message)
                # Acks go out together while more messages wait (one socket
                # write instead of one per message), and always before we
                # wait for the next one.
                if len(client.messages) == 0 or len(handled) >= ACK_BATCH:
                    self._acknowledge(client, handled, epoch)
                if self._stop.is_set():
                    return
        finally:
            self._acknowledge(client, handled, epoch)

    def _acknowledge(
        self, client: aiomqtt.Client, handled: list[aiomqtt.Message], epoch: int
    ) -> None:
        # A packet id belongs to one connection: after a reconnect the broker
        # redelivers the message, and acking the stale id could ack another.
        if epoch == self._epoch and self.connected.is_set():
            for message in handled:
                acknowledge(client, message)
        handled.clear()

    async def _dispatch(self, message: aiomqtt.Message) -> bool:
        """Handle one message; False when it must stay unacknowledged."""
        topic = message.topic.value
        raw = message.payload if isinstance(message.payload, bytes) else b""
        if isinstance(message.payload, bytearray):
            raw = bytes(message.payload)
        self.metrics.count("received")
        own = self._own_status
        if own is not None and topic == own.topic:
            said_by = user_properties_of(message.properties).get("instance")
            if own.calls_for_online(raw, bool(message.retain), said_by):
                await self._say_online_again(own, raw)
        found = self._subscriptions.match(topic)
        if found is None:
            await self.dead_letter(topic, raw, "no handler for this topic")
            return True
        route, params = found
        try:
            payload = decode_payload(route.spec, raw, take_oversize=route.take_oversize)
            received = Received(
                topic=topic,
                params=params,
                payload=payload,
                raw=raw,
                retained=bool(message.retain),
                properties=user_properties_of(message.properties),
            )
            await route.handler(received)
            self.metrics.count("handled")
        except LeaveUnacknowledged as why:
            self.metrics.count("left_unacknowledged")
            log.warning("left unacknowledged", extra={"topic": topic, "reason": str(why)})
            return False
        except InvalidMessage as error:
            await self.dead_letter(topic, raw, str(error))
        except Exception as error:
            log.exception("handler failed", extra={"topic": topic})
            await self.dead_letter(topic, raw, f"handler failed: {error!r}")
        return True
