"""The async shell of the deployer: requests in, containers and their
retained state out.

Workers share one table of tracked analytics: `control` reconciles with the
engine once after connecting (the retained states are the desired state),
then applies requests one at a time; `plan_slots` (unless the planner is
"fifo") plans the waiting requests every download slot and hands the chosen
ones on, evicting images no analytic wants (slots.py); `download`
(`download_slots` of them) takes analytics off a FIFO, pulls their image and
starts them; `watch` polls the engine for containers that died, overran their
lifetime or vanished. Every change is published retained on
`deploy/state/<analytic>`, and where the analytic runs, when that changes, on
`deploy/hosting/<analytic>` for the allocator: in the cloud until it runs
here, so its raw upload is charged, then on the gateway, its results. A
removed analytic's hosting and retained levels are cleared: its budget goes
to the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, TypeVar

from schemas.deploy import (
    AnalyticState,
    DeployRequest,
    DeploySpec,
    Desired,
    Download,
    Exit,
    Hosting,
    LifecycleRequest,
    State,
    hosted_in,
)
from schemas.qos import Hosted
from schemas.topic_spec import is_valid_level
from schemas.topics import (
    DEPLOY_HOSTING,
    DEPLOY_REQUEST,
    DEPLOY_SLOT,
    DEPLOY_STATE,
    DEPLOYER,
    QOS_LEVELS,
)
from services.common.backoff import Backoff
from services.common.door import MqttDoor, PublishFailed, Received
from services.common.dynsec_control import DynsecControl
from services.common.pacing import wait_set
from services.common.stage_runner import serve
from services.deployer.admission import (
    LABEL_ANALYTIC,
    LABEL_GATEWAY,
    LABEL_MANAGED,
    LABEL_REQUEST,
    MANAGER,
    GrantedTopic,
    ImageRef,
    Refused,
    granted_topics,
    limit_refusals,
    parse_image,
)
from services.deployer.engine import ContainerView, Engine, EngineError, PullFailed, RunSpec
from services.deployer.identities import (
    BrokerIdentities,
    DynsecIdentities,
    IdentityRefused,
    SharedAnalyticIdentity,
)
from services.deployer.layers import (
    ManifestUnknown,
    RegistryUnreachable,
    disk_refusal,
    fetch_remote_image,
    plan_download,
)
from services.deployer.settings import DeployerSettings
from services.deployer.slots import DownloadSlots, SlotRequest

log = logging.getLogger(__name__)
T = TypeVar("T")
MIB = 1024 * 1024
POLL_S = 0.5  # how often an idle worker looks at the stop event


@dataclass
class Tracked:
    """What the deployer knows of one analytic."""

    analytic: str
    desired: Desired | None
    spec: DeploySpec | None
    request_id: str = ""
    state: State = "requested"
    container_id: str | None = None
    started_ts: float | None = None
    restarts: int = 0
    download: Download | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class Command:
    message: Received[DeployRequest | LifecycleRequest]


async def _next(queue: asyncio.Queue[T], stop: asyncio.Event) -> T | None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(queue.get(), POLL_S)
    return None


class DeployerStage:
    def __init__(
        self,
        door: MqttDoor,
        settings: DeployerSettings,
        engine: Engine,
        identities: BrokerIdentities,
    ) -> None:
        self._door = door
        self._settings = settings
        self._engine = engine
        self._identities = identities
        self._tracked: dict[str, Tracked] = {}
        self._retained: dict[str, AnalyticState] = {}
        self._commands: asyncio.Queue[Command] = asyncio.Queue(maxsize=settings.max_pending)
        self._downloads: asyncio.Queue[str] = asyncio.Queue(maxsize=settings.max_pending)
        self._queued: list[str] = []  # FIFO order, for queue positions
        self._hosted: dict[str, Hosted | None] = {}  # as last published
        # Planned downloads (slots.py): requests wait here for the next slot.
        planned = settings.download_planner != "fifo"
        self._slots = DownloadSlots(engine, settings) if planned else None
        self._waiting: list[str] = []
        self._slot_wanted = asyncio.Event()  # a request waits for a slot
        self.reconciled = asyncio.Event()
        self._broker_host = settings.analytic_broker_host or ""
        door.subscribe(DEPLOY_REQUEST, self.on_request)
        door.subscribe(DEPLOY_STATE, self.on_own_state)

    # -- handlers (quick: the workers do the engine's work) --------------------

    async def on_request(self, message: Received[DeployRequest | LifecycleRequest]) -> None:
        try:
            self._commands.put_nowait(Command(message))
        except asyncio.QueueFull:
            await self._door.dead_letter(
                message.topic, message.raw, f"deployer busy: {self._commands.qsize()} pending"
            )

    async def on_own_state(self, message: Received[AnalyticState | None]) -> None:
        """Before reconciling: the retained states are the desired state."""
        if self.reconciled.is_set():
            return
        analytic = message.params["analytic"]
        if message.payload is None:
            self._retained.pop(analytic, None)
        else:
            self._retained[analytic] = message.payload

    # -- publishing --------------------------------------------------------------

    async def _publish(
        self,
        tracked: Tracked,
        state: State,
        reason: str = "",
        *,
        exit: Exit | None = None,
        queue_position: int | None = None,
    ) -> None:
        tracked.state = state
        message = AnalyticState(
            source=DEPLOYER,
            analytic=tracked.analytic,
            state=state,
            desired=tracked.desired,
            reason=reason[:4000],
            spec=tracked.spec,
            request_id=tracked.request_id,
            container_id=tracked.container_id,
            queue_position=queue_position,
            download=tracked.download if state == "downloading" else None,
            exit=exit,
            restarts=tracked.restarts,
            started_ts=tracked.started_ts,
        )
        self._door.metrics.count(f"state_{state}")
        log.info("analytic state", extra={"analytic": tracked.analytic, "state": state})
        try:
            await self._door.publish(DEPLOY_STATE, message, analytic=tracked.analytic)
        except PublishFailed as error:
            log.warning("state not published", extra={"error": str(error)})
        await self._publish_hosting(tracked.analytic, state)

    async def _publish_hosting(self, analytic: str, state: State) -> None:
        """Where the analytic runs, when that changed (a failed publish is
        tried again at its next state). Once removed: its hosting and its
        retained levels cleared, so no allocator counts it any more."""
        hosted = hosted_in(state)
        if analytic in self._hosted and self._hosted[analytic] == hosted:
            return
        try:
            if hosted is None:
                await self._door.publish(DEPLOY_HOSTING, None, analytic=analytic)
            else:
                hosting = Hosting(source=DEPLOYER, hosted=hosted, state=state)
                await self._door.publish(DEPLOY_HOSTING, hosting, analytic=analytic)
            if state == "removed":
                await self._door.publish(QOS_LEVELS, None, analytic=analytic)
        except PublishFailed as error:
            log.warning("hosting not published", extra={"error": str(error)})
            self._hosted.pop(analytic, None)
            return
        self._hosted[analytic] = hosted

    # -- control: reconcile once, then one request at a time -----------------------

    async def control(self, stop: asyncio.Event) -> None:
        while not stop.is_set() and not self._door.connected.is_set():
            await wait_set(stop, POLL_S)
        await wait_set(stop, self._settings.reconcile_settle_s)
        backoff = Backoff(self._settings.pull_retry_initial_s, self._settings.pull_retry_max_s)
        while not stop.is_set() and not self.reconciled.is_set():
            try:
                await self._engine.connect()
                network = self._settings.analytics_network
                gateway_address = await self._engine.ensure_network(network)
                self._broker_host = self._broker_host or gateway_address
                await self._reconcile()
            except EngineError as error:  # no engine yet: requests wait in their queue
                log.warning("engine not answering", extra={"error": str(error)})
                self._door.metrics.degraded = f"engine: {error}"
                await wait_set(stop, backoff.next_delay())
            else:
                self._door.metrics.degraded = None
                self.reconciled.set()
        while (command := await _next(self._commands, stop)) is not None:
            try:
                await self._apply(command.message)
            except EngineError as error:
                log.warning("engine error", extra={"error": str(error)})
                await self._door.dead_letter(
                    command.message.topic, command.message.raw, f"engine error: {error}"
                )

    async def _apply(self, message: Received[DeployRequest | LifecycleRequest]) -> None:
        request = message.payload
        if isinstance(request, DeployRequest):
            await self._deploy(message, request)
            return
        tracked = self._tracked.get(request.analytic)
        if tracked is None:
            await self._door.dead_letter(
                message.topic, message.raw, f"unknown analytic {request.analytic!r}"
            )
        elif request.action == "remove":
            await self._remove(tracked, "removed on request")
        elif request.action == "stop":
            await self._stop(tracked)
        else:
            await self._start(tracked, request.id)

    async def _deploy(self, message: Received[Any], request: DeployRequest) -> None:
        spec = request.request
        known = self._tracked.get(spec.analytic)
        if known is not None and known.request_id == request.id:
            return  # a redelivery of the request in force (QoS 1, after a restart)
        busy = known is not None and known.state not in ("failed", "orphaned", "removed")
        if known is not None and busy and known.desired in ("running", "stopped"):
            reason = f"{spec.analytic} is {known.state}: remove it before deploying it again"
            await self._door.dead_letter(message.topic, message.raw, reason)
            return
        if known is not None and known.container_id is not None:
            async with known.lock:
                await self._engine.remove(known.container_id, self._settings.stop_timeout_s)
        tracked = Tracked(spec.analytic, "running", spec, request.id)
        self._tracked[spec.analytic] = tracked
        await self._publish(tracked, "requested")
        try:
            self._admit(spec)
        except Refused as refusal:
            await self._publish(tracked, "failed", f"refused: {refusal}")
            return
        await self._enqueue(tracked)

    def _admit(self, spec: DeploySpec) -> tuple[ImageRef, list[GrantedTopic]]:
        refusals = limit_refusals(spec, self._settings.ceilings())
        if refusals:
            raise Refused("; ".join(refusals))
        return parse_image(spec.image, self._settings.registry), granted_topics(
            spec, self._door.root
        )

    async def _enqueue(self, tracked: Tracked) -> None:
        if self._slots is not None and not await self._image_on_disk(tracked):
            await self._wait_for_slot(tracked)
            return
        try:
            self._downloads.put_nowait(tracked.analytic)
        except asyncio.QueueFull:
            await self._publish(tracked, "failed", "download queue full")
            return
        self._queued.append(tracked.analytic)
        await self._publish(tracked, "queued", queue_position=len(self._queued) - 1)

    def _image_of(self, tracked: Tracked) -> ImageRef | None:
        if tracked.spec is None:
            return None
        try:
            return parse_image(tracked.spec.image, self._settings.registry)
        except Refused:
            return None  # the download worker fails it, naming why

    async def _image_on_disk(self, tracked: Tracked) -> bool:
        image = self._image_of(tracked)
        return image is None or await self._engine.image_digests(image.full) is not None

    async def _wait_for_slot(self, tracked: Tracked) -> None:
        if tracked.analytic not in self._waiting:
            if len(self._waiting) >= self._settings.max_pending:
                await self._publish(tracked, "failed", "download queue full")
                return
            self._waiting.append(tracked.analytic)
        self._slot_wanted.set()
        position = self._waiting.index(tracked.analytic)
        reason = "waiting for a download slot"
        await self._publish(tracked, "queued", reason, queue_position=position)

    async def _stop(self, tracked: Tracked) -> None:
        async with tracked.lock:
            tracked.desired = "stopped"
            if tracked.container_id is not None:
                await self._engine.stop(tracked.container_id, self._settings.stop_timeout_s)
            await self._publish(tracked, "stopped", "stopped on request")

    async def _start(self, tracked: Tracked, request_id: str) -> None:
        if tracked.spec is None:  # an orphan: nothing to start it from
            await self._publish(tracked, tracked.state, "no deploy request: remove it instead")
            return
        async with tracked.lock:
            tracked.desired = "running"
            tracked.request_id = request_id
            if tracked.container_id is not None:
                detail = await self._engine.detail(tracked.container_id)
                if detail is not None:
                    await self._engine.start(tracked.container_id)
                    tracked.started_ts = time.time()
                    await self._publish(tracked, "running", "started on request")
                    return
                tracked.container_id = None
        await self._enqueue(tracked)

    async def _remove(self, tracked: Tracked, reason: str) -> None:
        async with tracked.lock:
            tracked.desired = "removed"
            for view in await self._engine.managed(self._settings.gateway_id):
                if view.analytic == tracked.analytic or view.id == tracked.container_id:
                    await self._engine.remove(view.id, self._settings.stop_timeout_s)
            try:
                await self._identities.revoke(tracked.analytic)
            except IdentityRefused as error:  # reported; the container is gone anyway
                reason = f"{reason}; broker identity not revoked: {error}"
                self._door.metrics.count("revoke_failures")
            tracked.container_id = None
            await self._publish(tracked, "removed", reason)

    async def _reconcile(self) -> None:
        """Make the engine match the retained states: adopt what runs, resume
        what was on its way, stop or remove what should be, report orphans."""
        containers = {
            view.analytic: view for view in await self._engine.managed(self._settings.gateway_id)
        }
        for analytic, state in sorted(self._retained.items()):
            tracked = Tracked(
                analytic,
                state.desired,
                state.spec,
                state.request_id,
                state.state,
                state.container_id,
                state.started_ts,
                state.restarts,
            )
            self._tracked[analytic] = tracked
            view = containers.pop(analytic, None)
            await self._reconcile_one(tracked, state, view)
        for view in containers.values():
            if not is_valid_level(view.analytic):
                log.warning("container with an unusable analytic label", extra={"id": view.id})
                continue
            tracked = Tracked(view.analytic, None, None, container_id=view.id)
            self._tracked[tracked.analytic] = tracked
            self._door.metrics.count("orphans")
            await self._publish(
                tracked, "orphaned", f"container {view.id[:12]} ({view.status}) has no request"
            )
        self._retained.clear()

    async def _reconcile_one(
        self, tracked: Tracked, state: AnalyticState, view: ContainerView | None
    ) -> None:
        if view is not None:
            tracked.container_id = view.id
        if tracked.desired in ("removed", None):
            if view is not None and tracked.desired == "removed":
                await self._engine.remove(view.id, self._settings.stop_timeout_s)
            elif view is not None:
                await self._publish(tracked, "orphaned", state.reason)
            return
        if tracked.desired == "stopped":
            if view is not None and view.status in ("running", "restarting"):
                await self._engine.stop(view.id, self._settings.stop_timeout_s)
            if state.state != "stopped":
                await self._publish(tracked, "stopped", "stopped on request")
            return
        if view is not None:
            if view.status == "created":
                await self._engine.start(view.id)
                tracked.started_ts = time.time()
            if state.state != "running" or view.status == "created":
                await self._publish(tracked, "running", "found after a deployer restart")
            tracked.state = "running"  # the watcher judges an exited one
            self._door.metrics.count("adopted")
        elif state.state == "failed":
            return  # terminal until the operator deploys or starts it again
        else:
            tracked.container_id = None
            await self._enqueue(tracked)  # resumes: layers on disk are not pulled again

    # -- downloads: FIFO, then start ------------------------------------------------

    async def download(self, stop: asyncio.Event) -> None:
        while not self.reconciled.is_set() and not stop.is_set():
            await wait_set(stop, POLL_S)
        while (analytic := await _next(self._downloads, stop)) is not None:
            with contextlib.suppress(ValueError):
                self._queued.remove(analytic)
            tracked = self._tracked.get(analytic)
            if tracked is None or tracked.desired != "running" or tracked.spec is None:
                continue
            try:
                if await self._fetch(tracked, tracked.spec, stop):
                    await self._run(tracked, tracked.spec)
            except EngineError as error:
                await self._publish(tracked, "failed", f"engine error: {error}")

    async def _fetch(self, tracked: Tracked, spec: DeploySpec, stop: asyncio.Event) -> bool:
        """Pull the image unless it is on disk; retries a registry that does
        not answer with backoff. False when the analytic failed or was called off."""
        settings = self._settings
        image, _ = self._admit(spec)
        backoff = Backoff(settings.pull_retry_initial_s, settings.pull_retry_max_s)
        first = time.monotonic()
        attempt = 1
        while True:
            try:
                return await self._fetch_once(tracked, image, attempt)
            except ManifestUnknown as error:
                await self._publish(tracked, "failed", f"bad reference: {error}")
                return False
            except PullFailed as error:
                if error.permanent:
                    await self._publish(tracked, "failed", f"pull error: {error}")
                    return False
                problem = f"pull error: {error}"
            except RegistryUnreachable as error:
                problem = f"registry unreachable: {error}"
            if time.monotonic() - first > settings.pull_give_up_s:
                await self._publish(
                    tracked, "failed", f"{problem}; gave up after {settings.pull_give_up_s} s"
                )
                return False
            if tracked.desired != "running":
                return False
            delay = backoff.next_delay()
            self._door.metrics.count("pull_retries")
            tracked.download = (
                tracked.download
                or Download(bytes_done=0, bytes_total=0, layers_total=0, layers_cached=0)
            ).model_copy(update={"attempt": attempt})
            await self._publish(
                tracked, "downloading", f"{problem}; retry {attempt} in {delay:.1f} s"
            )
            await wait_set(stop, delay)
            attempt += 1
            if stop.is_set() or tracked.desired != "running":
                return False

    async def _fetch_once(self, tracked: Tracked, image: ImageRef, attempt: int) -> bool:
        settings = self._settings
        digests = await self._engine.image_digests(image.full)
        try:
            remote = await asyncio.wait_for(
                asyncio.to_thread(
                    fetch_remote_image,
                    image.registry,
                    image.repository,
                    image.reference,
                    settings.engine_timeout_s,
                ),
                settings.engine_timeout_s * 3,
            )
        except (RegistryUnreachable, TimeoutError) as error:
            if digests is not None:  # offline, but the image is on disk: run that
                self._door.metrics.count("images_cached_offline")
                return True
            raise RegistryUnreachable(str(error) or "no answer in time") from None
        if digests is not None and f"{image.name}@{remote.digest}" in digests:
            self._door.metrics.count("images_cached")
            return True
        plan = plan_download(remote, await self._engine.local_diff_ids())
        refusal = (
            None
            if self._slots is not None
            else disk_refusal(  # slots keep the budget
                plan,
                await self._engine.layers_bytes(),
                int(settings.image_disk_budget_mb * MIB),
                settings.layer_expansion,
            )
        )
        if refusal is not None:
            await self._publish(tracked, "failed", f"refused: {refusal}")
            return False
        tracked.download = Download(
            bytes_done=0,
            bytes_total=plan.bytes_total,
            layers_total=plan.layers_total,
            layers_cached=plan.layers_cached,
            attempt=attempt,
        )
        await self._publish(tracked, "downloading")
        done = [0]

        async def report(pulling: asyncio.Task[None]) -> None:
            sent = -1
            while not pulling.done():
                await asyncio.wait({pulling}, timeout=settings.progress_interval_s)
                if tracked.desired != "running" or tracked.download is None:
                    continue  # stopped or removed meanwhile: that state stands
                if done[0] != sent and not pulling.done():
                    sent = done[0]
                    tracked.download = tracked.download.model_copy(update={"bytes_done": sent})
                    await self._publish(tracked, "downloading")

        def progress(bytes_done: int) -> None:
            done[0] = min(bytes_done, plan.bytes_total) if plan.bytes_total else bytes_done

        async with asyncio.TaskGroup() as tasks:
            pulling = tasks.create_task(
                self._engine.pull(image.name, image.reference, progress, settings.pull_timeout_s)
            )
            tasks.create_task(report(pulling))
        self._door.metrics.count("pulls")
        self._door.metrics.count("pulled_bytes", plan.bytes_total)
        return True

    async def _run(self, tracked: Tracked, spec: DeploySpec) -> None:
        async with tracked.lock:
            if tracked.desired != "running":
                return
            await self._publish(tracked, "starting")
            image, topics = self._admit(spec)
            try:
                identity = await self._identities.create(spec.analytic, topics, spec.stage)
            except IdentityRefused as error:
                await self._publish(tracked, "failed", f"broker identity: {error}")
                return
            environment = {
                **spec.environment,
                "EDGEGW_ANALYTIC": spec.analytic,
                "EDGEGW_GATEWAY_ID": self._settings.gateway_id,
                # As every stage reads it: the tree is <topic root>/<gateway id>.
                "EDGEGW_TOPIC_ROOT": self._settings.topic_root,
                "EDGEGW_MQTT_HOST": self._broker_host,
                "EDGEGW_MQTT_PORT": str(
                    self._settings.analytic_broker_port or self._settings.mqtt_port
                ),
                "EDGEGW_MQTT_USERNAME": identity.username,
                "EDGEGW_MQTT_PASSWORD": identity.password,
                "EDGEGW_MQTT_CLIENT_ID": identity.client_id,
                **{grant.env_name: grant.topic for grant in topics},
            }
            run = RunSpec(
                name=container_name(self._settings.gateway_id, spec.analytic),
                image=image.full,
                labels={
                    LABEL_MANAGED: MANAGER,
                    LABEL_GATEWAY: self._settings.gateway_id,
                    LABEL_ANALYTIC: spec.analytic,
                    LABEL_REQUEST: tracked.request_id,
                },
                environment=environment,
                nano_cpus=int(spec.limits.cpus * 1e9),
                memory_bytes=spec.limits.memory_mb * MIB,
                pids=spec.limits.pids,
                user=self._settings.analytic_user,
                network=self._settings.analytics_network,
                restart=(
                    {"Name": "on-failure", "MaximumRetryCount": spec.max_restarts}
                    if spec.restart == "on-failure" and spec.max_restarts > 0
                    else {"Name": "no"}
                ),
                command=[spec.stage] if spec.stage is not None else None,
            )
            tracked.container_id, created = await self._engine.run_container(run)
            tracked.started_ts = time.time()
            if self._slots is not None:
                self._slots.usage.started(image.full, tracked.started_ts)
            tracked.restarts = 0
            self._door.metrics.count("started" if created else "adopted")
            await self._publish(tracked, "running")

    # -- slots: plan the waiting requests together (slots.py) ------------------------

    async def plan_slots(self, stop: asyncio.Event) -> None:
        """Plan the waiting requests slot after slot, each slot once the
        previous slot's pulls have ended (`_until_slot_opens` says when)."""
        if self._slots is None:
            return
        while not stop.is_set():
            await self._until_slot_opens(stop)
            while not stop.is_set() and not self._downloads_idle():
                await wait_set(stop, POLL_S)  # the previous slot's pulls first
            if stop.is_set() or not self.reconciled.is_set():
                continue
            self._slot_wanted.clear()
            try:
                await self._plan_slot(self._slots)
            except EngineError as error:
                log.warning("engine error in a download slot", extra={"error": str(error)})
            if self._waiting:
                self._slot_wanted.set()  # deferred: planned again in the next slot

    async def _until_slot_opens(self, stop: asyncio.Event) -> None:
        """Seed 004's clock: every `download_slot_s`, empty slots too. Otherwise
        `download_slot_gather_s` after a request starts waiting (a burst is
        planned together); `download_slot_s` is then the horizon of a slot's
        download volume, not a wait."""
        settings = self._settings
        if settings.download_slot_clock:
            await wait_set(stop, settings.download_slot_s)
            return
        while not stop.is_set() and not await wait_set(self._slot_wanted, POLL_S):
            pass  # no request waits
        await wait_set(stop, settings.download_slot_gather_s)

    def _downloads_idle(self) -> bool:
        return self._downloads.empty() and not any(
            t.state in ("downloading", "starting") for t in self._tracked.values()
        )

    async def _plan_slot(self, slots: DownloadSlots) -> None:
        waiting: list[SlotRequest] = []
        for analytic in list(self._waiting):
            tracked = self._tracked.get(analytic)
            image = self._image_of(tracked) if tracked is not None else None
            if tracked is None or tracked.state != "queued" or not tracked.spec or not image:
                self._waiting.remove(analytic)  # removed, stopped or failed meanwhile
                continue
            waiting.append(SlotRequest(analytic, image, tracked.spec.upload_saving_kbps))
        # Images an analytic still wants are never evicted.
        wanted = {
            image.full
            for t in self._tracked.values()
            if t.desired in ("running", "stopped")
            and t.state not in ("failed", "removed", "orphaned")
            and (image := self._image_of(t)) is not None
        }
        decision = await slots.plan(waiting, wanted)
        for analytic in [*decision.chosen, *decision.unplanned]:
            self._waiting.remove(analytic)
            self._queued.append(analytic)
            self._downloads.put_nowait(analytic)  # as bounded as _waiting
        for analytic, reason in [*decision.failed.items(), *decision.deferred.items()]:
            tracked = self._tracked[analytic]
            if analytic in decision.failed:
                self._waiting.remove(analytic)
                await self._publish(tracked, "failed", reason)
            else:
                position = self._waiting.index(analytic)
                await self._publish(tracked, "queued", reason, queue_position=position)
        if decision.report is not None:
            for evicted in decision.report.evicted:
                self._door.metrics.count("evicted_images")
                self._door.metrics.count("evicted_bytes", evicted.freed_bytes)
            self._door.metrics.gauge("image_cache_bytes", decision.report.cache_bytes_after)
            try:
                await self._door.publish(DEPLOY_SLOT, decision.report)
            except PublishFailed as error:
                log.warning("slot not published", extra={"error": str(error)})

    # -- watch: dead containers, lifetimes, vanished ones -----------------------------

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await wait_set(stop, self._settings.watch_interval_s)
            if not self.reconciled.is_set() or stop.is_set():
                continue
            try:
                await self._watch_once()
            except EngineError as error:
                log.warning("engine not answering", extra={"error": str(error)})
                self._door.metrics.degraded = f"engine: {error}"
            else:
                self._door.metrics.degraded = None

    async def _watch_once(self) -> None:
        views = {view.id: view for view in await self._engine.managed(self._settings.gateway_id)}
        self._door.metrics.gauge("containers", len(views))
        for tracked in list(self._tracked.values()):
            if tracked.state != "running" or tracked.desired != "running" or tracked.lock.locked():
                continue
            view = views.get(tracked.container_id or "")
            if view is None:
                tracked.container_id = None
                await self._publish(tracked, "failed", "container gone (removed outside)")
                continue
            spec = tracked.spec
            lifetime = spec.lifetime_s if spec is not None else None
            if lifetime and tracked.started_ts and time.time() - tracked.started_ts > lifetime:
                await self._remove(tracked, f"lifetime of {lifetime} s ended")
            elif view.status in ("exited", "dead"):
                await self._judge_exit(tracked, view)

    async def _judge_exit(self, tracked: Tracked, view: ContainerView) -> None:
        detail = await self._engine.detail(view.id)
        spec = tracked.spec
        if detail is None or spec is None:
            return
        tracked.restarts = detail.restart_count
        restarts_left = spec.restart == "on-failure" and detail.restart_count < spec.max_restarts
        if restarts_left and detail.exit_code != 0:
            return  # the engine's restart policy brings it back
        tail = await self._engine.log_tail(view.id, self._settings.log_tail_lines)
        exit = Exit(code=detail.exit_code, oom_killed=detail.oom_killed, log_tail=tail)
        if detail.oom_killed:
            reason = f"OOM-killed (memory limit {spec.limits.memory_mb} MB)"
        else:
            reason = f"exited with code {detail.exit_code}"
        if detail.restart_count:
            reason += f" after {detail.restart_count} restarts"
        await self._publish(tracked, "failed", reason, exit=exit)


def identities_of(settings: DeployerSettings) -> BrokerIdentities:
    if settings.broker_identities == "dynsec":
        admin_password = settings.dynsec_admin_password.get_secret_value()
        control = DynsecControl(
            settings, settings.dynsec_admin_username, admin_password, settings.operation_timeout_s
        )
        return DynsecIdentities(control, settings.gateway_id, admin_password)
    return SharedAnalyticIdentity(
        settings.analytic_mqtt_username,
        settings.analytic_mqtt_password.get_secret_value(),
        settings.gateway_id,
    )


def container_name(gateway_id: str, analytic: str) -> str:
    return f"edgegw-{gateway_id}-{analytic}"


async def run(
    settings: DeployerSettings,
    stop: asyncio.Event | None = None,
    identities: BrokerIdentities | None = None,
) -> None:
    door = MqttDoor(settings, DEPLOYER)
    engine = Engine(settings.docker_url, settings.engine_timeout_s)
    identities = identities or identities_of(settings)
    stage = DeployerStage(door, settings, engine, identities)
    downloads = [stage.download] * settings.download_slots
    try:
        planning = [stage.plan_slots] if settings.download_planner != "fifo" else []
        await serve(door, [stage.control, stage.watch, *planning, *downloads], stop=stop)
    finally:
        engine.close()
