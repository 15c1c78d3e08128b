"""The async shell of gas-average: readings in, averages and events out.

Events are never lost to a failed publish: an episode change goes into a
bounded queue of unsent events first, and leaves it only once the broker has
acknowledged it. When the publish fails (the broker crashed), the reading
that caused the event stays unacknowledged (the broker redelivers it and the
redelivery, deduplicated, retries the queue) and the queue is flushed, in
order and with the same ids, as soon as the connection is back. The episode
state advances once per reading either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from schemas.gas import GasEvent, GasReading
from schemas.topics import GAS_AVERAGE, GAS_AVERAGE_RESULT, GAS_READING
from services.common.dedup import SeenIds
from services.common.door import (
    InvalidMessage,
    LeaveUnacknowledged,
    MqttDoor,
    PublishFailed,
    Received,
)
from services.common.pacing import wait_set
from services.common.runtime_config import RuntimeConfig
from services.common.stage_runner import serve
from services.common.unsent_events import UnsentEvents
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
        self._unsent = UnsentEvents[GasEvent](
            door, lambda event: event.sensor, settings.max_unsent_events
        )
        self.summary = GasSummaryPublisher(
            door, settings.summary_period_s, settings.summary_max_series
        )
        self.config.on_change(self._book.reconfigure)
        door.subscribe(GAS_READING, self.on_reading)

    async def on_reading(self, message: Received[GasReading]) -> None:
        reading = message.payload
        if self._unsent.full and not await self._unsent.send():
            # Before the reading changes any state: the broker keeps it.
            raise LeaveUnacknowledged(f"{len(self._unsent)} events unsent")
        if not self._seen.first_time(reading.id):
            self._door.metrics.count("duplicate_readings")
            # A redelivery: the event it caused may still be waiting.
            await self._send_unsent_or_hold()
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
            self._unsent.extend([outcome.event])
        # Awaited at QoS 1 before the reading is acknowledged: if we die here
        # the reading is redelivered and the event computed again, same id.
        await self._send_unsent_or_hold()

    async def _send_unsent_or_hold(self) -> None:
        if self._unsent and not await self._unsent.send():
            raise LeaveUnacknowledged(f"{len(self._unsent)} events unsent")

    async def close_silent_series(self, stop: asyncio.Event) -> None:
        """Worker: end the episodes of silent sensors, and send what is unsent
        (after a reconnect) even if no reading comes."""
        while not stop.is_set():
            await wait_set(stop, SILENCE_CHECK_S)
            self._unsent.extend(self._book.close_silent(time.time()))
            if self._unsent and self._door.connected.is_set():
                await self._unsent.send()
        if self._unsent:
            # Stopping: the door still publishes while workers finish.
            await self._unsent.send()


async def run(settings: GasAverageSettings, stop: asyncio.Event | None = None) -> None:
    door = MqttDoor(settings, GAS_AVERAGE)
    stage = GasAverageStage(door, settings)
    await serve(door, [stage.close_silent_series, stage.summary.run], stop=stop)
