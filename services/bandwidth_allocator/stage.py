"""The async shell of bandwidth-allocator: offered levels, weights, budget and
uplink reports in; retained knobs per analytic and the plan summary out.

Every change (levels offered or withdrawn, a stage going offline or back
online, the config, a measured budget that moved) sets one flag; the
allocation loop waits `debounce_s` after it so a burst of changes (a stage
starting with many analytics, the retained messages at start-up) makes one
re-solve, solves in a thread, publishes the knob of every analytic whose
level changed, then the plan. Dry runs (`allocator/request`) are solved the
same way and answered on `allocator/response/<request_id>`, changing nothing.

The budget in force is itself published as the knob of `qos/uplink`
(`params.kbps`): the cloud bridge rate-limits its uploads to it.
"""

from __future__ import annotations

import asyncio
import logging

from schemas.alerts import UplinkUsage
from schemas.analytics import UPLINK_ANALYTIC, UplinkKnobParams
from schemas.deploy import Hosting
from schemas.envelope import new_id
from schemas.qos import PlanRequest, QosKnob, QosLevel, QosLevels
from schemas.service import OFFLINE, ONLINE
from schemas.topics import (
    BANDWIDTH_ALLOCATOR,
    DEPLOY_HOSTING,
    PLAN_REQUEST,
    PLAN_RESPONSE,
    QOS_KNOB,
    QOS_LEVELS,
    QOS_PLAN,
    STATUS,
    UPLINK_USAGE,
)
from services.bandwidth_allocator.book import AnalyticBook, TooManyAnalytics
from services.bandwidth_allocator.budget import changed_enough, next_measured_budget
from services.bandwidth_allocator.planning import Plan, changed_levels, make_plan
from services.bandwidth_allocator.settings import AllocatorConfig, BandwidthAllocatorSettings
from services.common.door import InvalidMessage, MqttDoor, PublishFailed, Received
from services.common.pacing import wait_set
from services.common.runtime_config import RuntimeConfig
from services.common.stage_runner import serve

log = logging.getLogger(__name__)
KNOBS_IN_FLIGHT = 32
RETRY_AFTER_FAILED_PUBLISH_S = 1.0
STOP_CHECK_S = 0.5


class AllocatorStage:
    def __init__(self, door: MqttDoor, settings: BandwidthAllocatorSettings) -> None:
        self._door = door
        self._settings = settings
        self.config = RuntimeConfig(door, AllocatorConfig, settings.startup_config())
        self._book = AnalyticBook(settings.max_analytics)
        self._measured_kbps: float | None = None
        self._measured_resolved: float | None = None
        self._published: dict[str, QosLevel] = {}  # equals what the broker holds retained
        self._changed = asyncio.Event()
        self.config.on_change(lambda _config: self._changed.set())
        door.subscribe(QOS_LEVELS, self.on_levels)
        door.subscribe(STATUS, self.on_status)
        door.subscribe(UPLINK_USAGE, self.on_uplink)
        door.subscribe(PLAN_REQUEST, self.on_plan_request)
        door.subscribe(DEPLOY_HOSTING, self.on_hosting)

    # -- inputs ----------------------------------------------------------------

    async def on_levels(self, message: Received[QosLevels | None]) -> None:
        analytic = message.params["analytic"]
        levels = message.payload
        if levels is None:  # the retained levels were cleared: withdrawn
            if self._book.withdraw(analytic):
                log.info("analytic withdrawn", extra={"analytic": analytic})
                self._changed.set()
            return
        if levels.analytic != analytic:
            raise InvalidMessage(f"analytic {levels.analytic!r} offered on the topic of {analytic}")
        if analytic == UPLINK_ANALYTIC:
            raise InvalidMessage(f"{UPLINK_ANALYTIC!r} is reserved for the uplink budget knob")
        try:
            if self._book.offer(levels):
                self._changed.set()
        except TooManyAnalytics as error:
            raise InvalidMessage(str(error)) from None

    async def on_hosting(self, message: Received[Hosting | None]) -> None:
        analytic = message.params["analytic"]
        hosted = message.payload.hosted if message.payload is not None else None
        try:
            changed = self._book.host(analytic, hosted)
        except TooManyAnalytics as error:
            raise InvalidMessage(str(error)) from None
        if changed:
            log.info("analytic hosting changed", extra={"analytic": analytic, "hosted": hosted})
            self._changed.set()

    async def on_status(self, message: Received[bytes]) -> None:
        word = message.raw.decode("utf-8", "replace").strip()
        if word not in (ONLINE, OFFLINE, ""):
            raise InvalidMessage(f"status must be {ONLINE} or {OFFLINE}, got {word[:20]!r}")
        # An empty retained status (deleted) means "nothing known": present.
        if self._book.stage_status(message.params["stage"], online=word != OFFLINE):
            log.info("stage availability changed", extra={"stage": message.params["stage"]})
            self._changed.set()

    async def on_uplink(self, message: Received[UplinkUsage | None]) -> None:
        if message.payload is None:
            return  # the retained report was cleared: keep the last measurement
        config = self.config.current
        measured = next_measured_budget(
            self._measured_kbps,
            message.payload,
            config.budget_floor_kbps,
            config.budget_ceiling_kbps,
            self._settings.measured_growth,
        )
        self._measured_kbps = measured
        # Against the value that last re-solved, so small steps add up.
        if changed_enough(self._measured_resolved, measured):
            self._measured_resolved = measured
            if config.budget_source == "measured":
                self._changed.set()

    async def on_plan_request(self, message: Received[PlanRequest]) -> None:
        request = message.payload
        plan = await asyncio.to_thread(
            make_plan,
            self._book.active(),
            self.config.current,
            request.budget_kbps,
            solver=request.solver,
            plan_id=request.request_id,
            dry_run=True,
            hosting=self._book.hosting(),
        )
        await self._door.publish(PLAN_RESPONSE, plan.summary, request_id=request.request_id)
        self._door.metrics.count("dry_runs")

    def budget_kbps(self, config: AllocatorConfig) -> float:
        """The budget in force. Measured, before the first uplink report:
        `budget_kbps`, clamped like every measured value."""
        if config.budget_source == "fixed":
            return config.budget_kbps
        base = self._measured_kbps if self._measured_kbps is not None else config.budget_kbps
        return min(config.budget_ceiling_kbps, max(config.budget_floor_kbps, base))

    # -- the allocation loop ---------------------------------------------------

    async def allocate(self, stop: asyncio.Event) -> None:
        self._changed.set()  # publish a plan even when nothing is offered
        while not stop.is_set():
            # Polling `stop` at this pace keeps the loop free of helper tasks.
            await wait_set(self._changed, STOP_CHECK_S)
            if not self._changed.is_set():
                continue
            if not self._door.connected.is_set():
                await wait_set(self._door.connected, STOP_CHECK_S)
                continue
            await wait_set(stop, self._settings.debounce_s)
            if stop.is_set():
                return
            self._changed.clear()
            config = self.config.current
            plan = await asyncio.to_thread(
                make_plan,
                self._book.active(),
                config,
                self.budget_kbps(config),
                plan_id=new_id(),
                hosting=self._book.hosting(),
            )
            if not await self._publish_plan(plan):
                await wait_set(stop, RETRY_AFTER_FAILED_PUBLISH_S)
                self._changed.set()

    async def _publish_plan(self, plan: Plan) -> bool:
        """Knobs that changed, then the plan; False if any publish failed."""
        metrics = self._door.metrics
        metrics.count("solves")
        metrics.gauge("analytics", len(plan.levels))
        metrics.gauge("budget_kbps", plan.summary.budget_kbps)
        metrics.gauge("solve_ms", plan.summary.solve_ms)
        window = asyncio.Semaphore(KNOBS_IN_FLIGHT)
        failed: list[str] = []

        async def send(analytic: str, level: QosLevel) -> None:
            knob = QosKnob(
                source=BANDWIDTH_ALLOCATOR,
                analytic=analytic,
                level=level,
                plan_id=plan.summary.plan_id,
                budget_kbps=plan.summary.budget_kbps,
            )
            async with window:
                try:
                    await self._door.publish(QOS_KNOB, knob, analytic=analytic)
                except PublishFailed as error:
                    failed.append(analytic)
                    log.warning("knob not published", extra={"error": str(error)})
                    return
            self._published[analytic] = level
            metrics.count("knobs_published")

        wanted = {**plan.levels, UPLINK_ANALYTIC: uplink_level(plan.summary.budget_kbps)}
        async with asyncio.TaskGroup() as tasks:
            for analytic, level in changed_levels(wanted, self._published).items():
                tasks.create_task(send(analytic, level))
        try:
            await self._door.publish(QOS_PLAN, plan.summary)
        except PublishFailed as error:
            log.warning("plan not published", extra={"error": str(error)})
            return False
        log.info(
            "plan published",
            extra={
                "plan_id": plan.summary.plan_id,
                "solver": plan.summary.solver,
                "budget_kbps": plan.summary.budget_kbps,
                "cost_kbps": plan.summary.cost_kbps,
                "total_utility": plan.summary.total_utility,
                "analytics": len(plan.levels),
                "solve_ms": plan.summary.solve_ms,
            },
        )
        return not failed


def uplink_level(budget_kbps: float) -> QosLevel:
    return QosLevel(
        name=f"{budget_kbps:g}kbps",
        params=UplinkKnobParams(kbps=budget_kbps).model_dump(),
        cost_kbps=budget_kbps,
        utility=1.0,
    )


async def run(settings: BandwidthAllocatorSettings, stop: asyncio.Event | None = None) -> None:
    door = MqttDoor(settings, BANDWIDTH_ALLOCATOR)
    stage = AllocatorStage(door, settings)
    await serve(door, [stage.allocate], stop=stop)
