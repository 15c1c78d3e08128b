"""The async shell of the web stage: the broker's messages into the view and
out to the browsers, the page's two requests (a config change, a dry-run
plan) out to the broker, and the HTTP server as one of the stage's workers.

The browser never talks to the broker: the stage holds the only connection,
with its own user, which may read what an operator reads and publish only
retained config and dry-run plan requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import uvicorn
from pydantic import JsonValue

from schemas.alerts import Alert, UplinkUsage
from schemas.audio import SoundEvent
from schemas.envelope import Envelope, new_id
from schemas.gas import GasEvent
from schemas.qos import PlanRequest, QosKnob, QosLevels, QosPlan
from schemas.service import ConfigState, Health, Metrics
from schemas.topics import (
    ALERT,
    CONFIG,
    CONFIG_STATE,
    EVENT,
    HEALTH,
    METRICS,
    PLAN_REQUEST,
    PLAN_RESPONSE,
    QOS_KNOB,
    QOS_LEVELS,
    QOS_PLAN,
    SNAPSHOT,
    STATUS,
    UPLINK_USAGE,
    WEB,
)
from schemas.video import ObjectEvent
from services.common.door import InvalidMessage, MqttDoor, Received
from services.common.pacing import wait_set
from services.common.runtime_config import GENERATION_KEY, config_digest
from services.common.stage_runner import serve
from services.web.gateway_view import GatewayView, Json
from services.web.live_feed import LiveFeed
from services.web.login import Sessions
from services.web.settings import WebSettings
from services.web.thumbnails import NotAnImage, thumbnail
from services.web.web_app import Busy, NoAnswer, build_app

log = logging.getLogger(__name__)
BROKER_CHECK_S = 0.5
MAX_PENDING = 16  # config changes and dry runs awaiting an answer at once


def _json(model: Envelope | None) -> Json | None:
    return None if model is None else model.model_dump(mode="json")


class WebStage:
    def __init__(self, door: MqttDoor, settings: WebSettings) -> None:
        self._door = door
        self.settings = settings
        self.gateway_id = settings.gateway_id
        self.view = GatewayView(
            history_s=settings.history_s,
            max_history_points=settings.max_history_points,
            max_alerts=settings.max_alerts,
            max_snapshots=settings.max_snapshots,
        )
        self.feed = LiveFeed(
            settings.max_streams,
            settings.stream_queue,
            on_count=lambda count: door.metrics.gauge("browsers", count),
        )
        self.sessions = Sessions(
            settings.web_password.get_secret_value(), settings.session_ttl_s, settings.max_sessions
        )
        self._plans: dict[str, asyncio.Future[Json]] = {}
        self._configs: dict[str, asyncio.Future[Json]] = {}
        door.subscribe(STATUS, self.on_status)
        door.subscribe(HEALTH, self.on_health)
        door.subscribe(METRICS, self.on_metrics)
        door.subscribe(CONFIG, self.on_config)
        door.subscribe(CONFIG_STATE, self.on_config_state)
        door.subscribe(UPLINK_USAGE, self.on_uplink)
        door.subscribe(ALERT, self.on_alert)
        door.subscribe(EVENT, self.on_event)
        door.subscribe(SNAPSHOT, self.on_snapshot)
        door.subscribe(QOS_LEVELS, self.on_levels)
        door.subscribe(QOS_KNOB, self.on_knob)
        door.subscribe(QOS_PLAN, self.on_plan)
        door.subscribe(PLAN_RESPONSE, self.on_plan_response)

    # -- from the broker ------------------------------------------------------

    async def on_status(self, message: Received[bytes]) -> None:
        status = message.raw.decode("utf-8", "replace") or None
        self.feed.send(self.view.stage_part(message.params["stage"], "status", status))

    async def on_health(self, message: Received[Health | None]) -> None:
        part = _json(message.payload)
        self.feed.send(self.view.stage_part(message.params["stage"], "health", part))

    async def on_metrics(self, message: Received[Metrics]) -> None:
        part = _json(message.payload)
        self.feed.send(self.view.stage_part(message.params["stage"], "metrics", part))

    async def on_config(self, message: Received[bytes]) -> None:
        value: JsonValue = None
        if message.raw.strip():
            try:
                value = orjson.loads(message.raw)
            except orjson.JSONDecodeError:
                value = message.raw.decode("utf-8", "replace")
        self.feed.send(self.view.stage_part(message.params["stage"], "config", value))

    async def on_config_state(self, message: Received[ConfigState | None]) -> None:
        part = _json(message.payload)
        self.feed.send(self.view.stage_part(message.params["stage"], "config_state", part))
        if message.payload is not None and part is not None:
            waiting = self._configs.get(message.payload.config_id)
            if waiting is not None and not waiting.done():
                waiting.set_result(part)

    async def on_uplink(self, message: Received[UplinkUsage | None]) -> None:
        self.feed.send(self.view.uplink_usage(_json(message.payload)))

    async def on_alert(self, message: Received[Alert]) -> None:
        self.feed.send(
            self.view.alert(message.params["source"], message.payload.model_dump(mode="json"))
        )

    async def on_event(self, message: Received[GasEvent | ObjectEvent | SoundEvent]) -> None:
        self.feed.send(
            self.view.event(message.params["source"], message.payload.model_dump(mode="json"))
        )

    async def on_snapshot(self, message: Received[bytes]) -> None:
        small = None
        if message.raw:
            try:
                small = await asyncio.to_thread(thumbnail, message.raw, self.settings.thumbnail_px)
            except NotAnImage as error:
                raise InvalidMessage(str(error)) from None
        camera, label = message.params["camera"], message.params["label"]
        self.feed.send(self.view.snapshot(camera, label, time.time(), small))

    async def on_levels(self, message: Received[QosLevels | None]) -> None:
        analytic = message.params["analytic"]
        self.feed.send(self.view.analytic_part("levels", analytic, _json(message.payload)))

    async def on_knob(self, message: Received[QosKnob | None]) -> None:
        analytic = message.params["analytic"]
        self.feed.send(self.view.analytic_part("knobs", analytic, _json(message.payload)))

    async def on_plan(self, message: Received[QosPlan | None]) -> None:
        self.feed.send(self.view.allocator_plan(_json(message.payload)))

    async def on_plan_response(self, message: Received[QosPlan]) -> None:
        waiting = self._plans.get(message.params["request_id"])
        if waiting is not None and not waiting.done():
            waiting.set_result(message.payload.model_dump(mode="json"))

    # -- from the page --------------------------------------------------------

    @contextlib.contextmanager
    def _awaiting(
        self, table: dict[str, asyncio.Future[Json]], key: str
    ) -> Iterator[asyncio.Future[Json]]:
        if len(self._plans) + len(self._configs) >= MAX_PENDING:
            raise Busy(f"{MAX_PENDING} requests are waiting for an answer already")
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        table[key] = future
        try:
            yield future
        finally:
            table.pop(key, None)

    async def _answer(self, future: asyncio.Future[Json], who: str) -> Json:
        try:
            async with asyncio.timeout(self.settings.answer_timeout_s):
                return await future
        except TimeoutError:
            raise NoAnswer(
                f"{who} did not answer within {self.settings.answer_timeout_s} s"
            ) from None

    async def dry_run(self, budget_kbps: float, solver: str | None) -> Json:
        """What the allocator would choose at `budget_kbps` (nothing changes)."""
        request = PlanRequest(
            source=WEB, request_id=new_id(), budget_kbps=budget_kbps, solver=solver
        )
        with self._awaiting(self._plans, request.request_id) as answer:
            await self._door.publish(PLAN_REQUEST, request, wait_s=self.settings.answer_timeout_s)
            return await self._answer(answer, "the bandwidth allocator")

    async def apply_config(self, stage: str, values: dict[str, Any]) -> Json:
        """Publish `values` as `stage`'s whole retained config; its answer."""
        row = self.view.stages.get(stage, {})
        state = row.get("config_state") or {}
        current = row.get("config")
        generations = [int(state.get("generation", 0))]
        if isinstance(current, dict) and isinstance(current.get(GENERATION_KEY), int):
            generations.append(current[GENERATION_KEY])
        desired = {k: v for k, v in values.items() if k != GENERATION_KEY}
        payload = orjson.dumps({**desired, GENERATION_KEY: max(generations) + 1})
        with self._awaiting(self._configs, config_digest(payload)) as answer:
            await self._door.publish(
                CONFIG, payload, stage=stage, wait_s=self.settings.answer_timeout_s
            )
            return await self._answer(answer, stage)

    async def watch_broker(self, stop: asyncio.Event) -> None:
        """Tell the browsers when the stage loses or regains the broker."""
        said: bool | None = None
        while not stop.is_set():
            connected = self._door.connected.is_set()
            if connected != said:
                self.feed.send(self.view.broker_link(connected))
                said = connected
            await wait_set(stop, BROKER_CHECK_S)

    # -- the HTTP server --------------------------------------------------------

    async def serve_http(self, stop: asyncio.Event) -> None:
        listening = _listen(self.settings.web_host, self.settings.web_port)
        app = build_app(self)
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
            server_header=False,
        )
        server = _StageServer(config)
        host, port = listening.getsockname()[:2]
        log.info("web page", extra={"url": f"http://{host}:{port}/"})
        async with asyncio.TaskGroup() as tasks:
            serving = tasks.create_task(server.serve(sockets=[listening]))
            stopping = tasks.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            self.feed.close()  # ends every live stream, so the server can finish
            server.should_exit = True
            stopping.cancel()
        if not stop.is_set():
            raise RuntimeError("the HTTP server stopped by itself")


class _StageServer(uvicorn.Server):
    """uvicorn without its own signal handling: SIGTERM belongs to the stage
    runner, which stops this server with the rest of the stage."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a taken port fails the stage at once (uvicorn
    would call sys.exit from inside the event loop)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.create_server((host, port), family=family, backlog=64)
    listening.setblocking(False)
    return listening


async def run(settings: WebSettings, stop: asyncio.Event | None = None) -> None:
    door = MqttDoor(settings, WEB)
    stage = WebStage(door, settings)
    await serve(door, [stage.serve_http, stage.watch_broker], stop=stop)
