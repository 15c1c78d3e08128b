"""The async shell of gas-average: readings in, averages and events out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from schemas.gas import GasEvent, GasReading
from schemas.topics import EVENT, GAS_AVERAGE, GAS_AVERAGE_RESULT, GAS_READING
from services.common.dedup import SeenIds
from services.common.door import InvalidMessage, MqttDoor, PublishFailed, Received
from services.common.pacing import wait_set
from services.common.runtime_config import RuntimeConfig
from services.common.stage_runner import serve
from services.gas_average.series import SeriesBook, TooManySeries
from services.gas_average.settings import GasAverageConfig, GasAverageSettings
from services.gas_average.summary import GasSummaryPublisher

log = logging.getLogger(__name__)
SILENCE_CHECK_S = 1.0


class GasAverageStage:
    def __init__(self, door: MqttDoor, settings: GasAverageSettings) -> None:
        self._door = door
        self.config = RuntimeConfig(door, GasAverageConfig, settings.startup_config())
        self._book = SeriesBook(self.config.current, settings.max_series)
        self._seen = SeenIds()
        self.summary = GasSummaryPublisher(
            door, settings.summary_period_s, settings.summary_max_series
        )
        self.config.on_change(self._book.reconfigure)
        door.subscribe(GAS_READING, self.on_reading)

    async def on_reading(self, message: Received[GasReading]) -> None:
        reading = message.payload
        if not self._seen.first_time(reading.id):
            self._door.metrics.count("duplicate_readings")
            return
        try:
            now = time.time()
            outcome = self._book.observe(reading, now)
        except TooManySeries as error:
            raise InvalidMessage(str(error)) from None
        self._door.metrics.count("readings")
        self._door.metrics.gauge("last_reading_ts", now)
        self.summary.observe(reading)
        self._door.metrics.gauge("series", len(self._book))
        if outcome.average is not None:
            with contextlib.suppress(PublishFailed):  # QoS 0: a lost average is replaced soon
                await self._door.publish(GAS_AVERAGE_RESULT, outcome.average, sensor=reading.sensor)
        if outcome.event is not None:
            # Awaited at QoS 1 before the reading is acknowledged: if we die
            # here the reading is redelivered and the event re-sent, same id.
            await self._publish_event(outcome.event)

    async def _publish_event(self, event: GasEvent) -> None:
        await self._door.publish(EVENT, event, source=event.sensor)
        self._door.metrics.count(f"events_{event.type}")
        log.info(
            "gas event",
            extra={"event_id": event.event_id, "type": event.type, "value": event.value},
        )

    async def close_silent_series(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await wait_set(stop, SILENCE_CHECK_S)
            for event in self._book.close_silent(time.time()):
                try:
                    await self._publish_event(event)
                except PublishFailed as error:
                    log.warning("end event not published", extra={"error": str(error)})


async def run(settings: GasAverageSettings, stop: asyncio.Event | None = None) -> None:
    door = MqttDoor(settings, GAS_AVERAGE)
    stage = GasAverageStage(door, settings)
    await serve(door, [stage.close_silent_series, stage.summary.run], stop=stop)
