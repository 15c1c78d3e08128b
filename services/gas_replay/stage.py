"""The async shell of gas-replay: paced readings out, at QoS 1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from schemas.gas import Gas, GasReading
from schemas.topics import GAS_READING, GAS_REPLAY
from services.common.door import MqttDoor, PublishFailed
from services.common.stage_runner import serve
from services.gas_replay.settings import GasReplaySettings
from services.gas_replay.simulator import make_sensors
from services.gas_replay.trace import check_trace, read_trace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Due:
    offset_s: float  # when to publish, in source time since the start
    sensor: str
    gas: Gas
    value: float


class GasReplayStage:
    def __init__(self, door: MqttDoor, settings: GasReplaySettings) -> None:
        self._door = door
        self._settings = settings
        if settings.trace_path is not None:
            rows = check_trace(settings.trace_path)  # a bad trace fails at start-up
            log.info("trace checked", extra={"rows": rows, "path": str(settings.trace_path)})

    def _simulated(self) -> Iterator[_Due]:
        settings = self._settings
        sensors = make_sensors(settings.sensor_pairs(), settings.leak_rate_per_hour, settings.seed)
        period = settings.sample_period_s
        tick = 0
        while True:
            t = tick * period
            if settings.first_leak_after_s is not None and tick == round(
                settings.first_leak_after_s / period
            ):
                sensors[0].start_leak(t)
            for sensor in sensors:
                yield _Due(t, sensor.sensor, sensor.gas, sensor.sample(t, period))
            tick += 1

    def _traced(self) -> Iterator[_Due]:
        assert self._settings.trace_path is not None
        offset = 0.0
        while True:
            first: float | None = None
            last = 0.0
            for row in read_trace(self._settings.trace_path):
                first = row.time if first is None else first
                last = row.time - first
                yield _Due(offset + last, row.sensor, row.gas, row.value)
            if not self._settings.loop:
                return
            offset += last + self._settings.sample_period_s

    async def replay(self, stop: asyncio.Event) -> None:
        settings = self._settings
        rows = self._traced() if settings.trace_path is not None else self._simulated()
        window = asyncio.Semaphore(settings.publish_window)
        wall_start = time.time()
        clock_start = time.monotonic()
        sent = 0
        async with asyncio.TaskGroup() as tasks:
            for due in rows:
                if stop.is_set() or (settings.max_readings and sent >= settings.max_readings):
                    break
                if settings.speed > 0:
                    delay = clock_start + due.offset_s / settings.speed - time.monotonic()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), delay)
                        if stop.is_set():
                            break
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
    await serve(door, [stage.replay], stop=stop)
