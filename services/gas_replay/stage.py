"""The async shell of gas-replay: paced readings out, at QoS 1.

Each sensor is an analytic of the bandwidth allocator (`gas.<sensor>`): the
stage publishes its levels retained at start (see `levels.py`) and follows
the retained knob `qos/gas.<sensor>`: simulated sensors are sampled at the
knob's `sample_period_s`, a trace is forwarded decimated to it. A new knob
wakes the pacing loop at once, so it applies well within a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

from schemas.analytics import (
    GasKnobParams,
    InvalidKnobParams,
    gas_analytic,
    knob_params,
    source_of,
)
from schemas.gas import GasReading
from schemas.qos import QosKnob, QosLevels
from schemas.topics import GAS_READING, GAS_REPLAY, QOS_KNOB, QOS_LEVELS
from services.common.door import InvalidMessage, MqttDoor, PublishFailed, Received
from services.common.pacing import wait_set
from services.common.stage_runner import serve
from services.gas_replay.levels import load_profile, sensor_levels
from services.gas_replay.schedule import SimulatedSchedule, TraceSchedule
from services.gas_replay.settings import GasReplaySettings
from services.gas_replay.simulator import make_sensors
from services.gas_replay.trace import TraceRow, check_trace, read_trace, trace_sensors

log = logging.getLogger(__name__)
# Longest single sleep of the pacing loop: how soon it notices `stop`.
STOP_CHECK_S = 0.25


class GasReplayStage:
    def __init__(self, door: MqttDoor, settings: GasReplaySettings) -> None:
        self._door = door
        self._settings = settings
        self._profile = load_profile()
        if settings.trace_path is not None:
            rows = check_trace(settings.trace_path)  # a bad trace fails at start-up
            log.info("trace checked", extra={"rows": rows, "path": str(settings.trace_path)})
            traced = trace_sensors(settings.trace_path)
            self._sensors = {name: (s.gas, s.interval_s) for name, s in traced.items()}
        else:
            self._sensors = {name: (gas, 0.0) for name, gas in settings.sensor_pairs()}
        # sensor -> period from its knob; absent: the settings' default.
        self._periods: dict[str, float] = {}
        self._knob_changed = asyncio.Event()
        for sensor in self._sensors:
            door.subscribe(QOS_KNOB, self.on_knob, analytic=gas_analytic(sensor))

    def period_of(self, sensor: str) -> float:
        if sensor in self._periods:
            return self._periods[sensor]
        # No knob yet: simulate at the configured period, forward a trace whole.
        return self._settings.sample_period_s if self._settings.trace_path is None else 0.0

    async def on_knob(self, message: Received[QosKnob | None]) -> None:
        sensor = source_of("gas", message.params["analytic"])
        if sensor is None:
            raise InvalidMessage("not the knob of a gas sensor")
        if message.payload is None:  # the knob was cleared: back to the settings
            if self._periods.pop(sensor, None) is not None:
                self._knob_changed.set()
            return
        try:
            period = knob_params(GasKnobParams, message.payload).sample_period_s
        except InvalidKnobParams as error:
            raise InvalidMessage(str(error)) from None
        if self._periods.get(sensor) != period:
            self._periods[sensor] = period
            self._knob_changed.set()
            log.info("qos knob applied", extra={"sensor": sensor, "period_s": period})

    async def announce_levels(self, stop: asyncio.Event) -> None:
        """Publish every sensor's levels, retained, once connected."""
        for sensor, (gas, interval) in self._sensors.items():
            levels = QosLevels(
                source=GAS_REPLAY,
                analytic=gas_analytic(sensor),
                levels=sensor_levels(self._profile, self._door.root, sensor, gas, interval),
            )
            while not stop.is_set():
                try:
                    await self._door.publish(QOS_LEVELS, levels, analytic=levels.analytic)
                    break
                except PublishFailed as error:
                    log.warning("levels not published", extra={"error": str(error)})

    def _traced(self) -> Iterator[tuple[float, TraceRow]]:
        assert self._settings.trace_path is not None
        offset = 0.0
        while True:
            first: float | None = None
            last = 0.0
            for row in read_trace(self._settings.trace_path):
                first = row.time if first is None else first
                last = row.time - first
                yield offset + last, row
            if not self._settings.loop:
                return
            offset += last + self._settings.sample_period_s

    async def replay(self, stop: asyncio.Event) -> None:
        settings = self._settings
        schedule: SimulatedSchedule | TraceSchedule
        if settings.trace_path is not None:
            schedule = TraceSchedule(self._traced(), self.period_of)
        else:
            sensors = make_sensors(
                settings.sensor_pairs(), settings.leak_rate_per_hour, settings.seed
            )
            schedule = SimulatedSchedule(sensors, self.period_of, settings.first_leak_after_s)
        window = asyncio.Semaphore(settings.publish_window)
        wall_start = time.time()
        clock_start = time.monotonic()
        sent = 0
        async with asyncio.TaskGroup() as tasks:
            while not stop.is_set():
                if settings.max_readings and sent >= settings.max_readings:
                    break
                if self._knob_changed.is_set():
                    self._knob_changed.clear()
                    now = (time.monotonic() - clock_start) * settings.speed
                    schedule.reschedule(now)
                offset = schedule.peek()
                if offset is None:
                    break
                if settings.speed > 0:
                    delay = clock_start + offset / settings.speed - time.monotonic()
                    if delay > 0:
                        await wait_set(self._knob_changed, min(delay, STOP_CHECK_S))
                        continue  # re-check stop, knobs and the next due time
                due = schedule.pop()
                if due is None:
                    continue
                await window.acquire()
                reading = GasReading(
                    source=GAS_REPLAY,
                    sensor=due.sensor,
                    gas=due.gas,
                    value=round(due.value, 4),
                    ts=wall_start + due.offset_s,
                )
                tasks.create_task(self._publish(reading, window))
                sent += 1
        log.info("replay finished", extra={"readings": sent})
        stop.set()  # a finite replay ends the stage

    async def _publish(self, reading: GasReading, window: asyncio.Semaphore) -> None:
        try:
            await self._door.publish(GAS_READING, reading, sensor=reading.sensor)
            self._door.metrics.count("readings_sent")
        except PublishFailed as error:
            self._door.metrics.count("readings_lost")
            log.warning("reading not delivered", extra={"error": str(error)})
        finally:
            window.release()


async def run(settings: GasReplaySettings, stop: asyncio.Event | None = None) -> None:
    door = MqttDoor(settings, GAS_REPLAY)
    stage = GasReplayStage(door, settings)
    await serve(door, [stage.announce_levels, stage.replay], stop=stop)
