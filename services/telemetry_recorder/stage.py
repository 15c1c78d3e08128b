"""The async shell of telemetry-recorder: every subscribed message becomes
points in the writer's bounded buffer; the writer sends them in batches.

A message is acknowledged once its points are buffered, not once written:
telemetry is best effort with a bounded, counted loss (see writer.py), and
holding QoS 1 acknowledgements for a server that may be away for hours would
stall the broker's queue for this client instead.
"""

from __future__ import annotations

import asyncio
import logging

from schemas.envelope import Envelope
from schemas.topics import (
    ALERT,
    AUDIO_CLASSES,
    DETECTIONS,
    EVENT,
    GAS_AVERAGE_RESULT,
    GAS_READING,
    HEALTH,
    METRICS,
    MOTION,
    TELEMETRY_RECORDER,
    UPLINK_USAGE,
    AnyTopicSpec,
)
from services.common.dedup import SeenIds
from services.common.door import MqttDoor, Received
from services.common.stage_runner import serve
from services.telemetry_recorder.points import points_for
from services.telemetry_recorder.settings import TelemetryRecorderSettings
from services.telemetry_recorder.writer import InfluxWriter

log = logging.getLogger(__name__)

RECORDED: tuple[AnyTopicSpec, ...] = (
    GAS_READING,
    GAS_AVERAGE_RESULT,
    DETECTIONS,
    AUDIO_CLASSES,
    MOTION,
    EVENT,
    ALERT,
    METRICS,
    HEALTH,
    UPLINK_USAGE,
)


class TelemetryRecorderStage:
    def __init__(self, door: MqttDoor, settings: TelemetryRecorderSettings) -> None:
        self._door = door
        self._gateway = settings.gateway_id
        self.writer = InfluxWriter(settings, door.metrics)
        self._seen = SeenIds()
        for spec in RECORDED:
            door.subscribe(spec, self.on_message)

    async def on_message(self, message: Received[Envelope | None]) -> None:
        envelope = message.payload
        if envelope is None:  # a retained health message cleared: nothing to record
            return
        if not self._seen.first_time(envelope.id):
            self._door.metrics.count("duplicates")
            return
        points = points_for(envelope, self._gateway)
        self.writer.add([point.to_line() for point in points])
        self._door.metrics.count("messages_recorded")


async def run(settings: TelemetryRecorderSettings, stop: asyncio.Event | None = None) -> None:
    door = MqttDoor(settings, TELEMETRY_RECORDER)
    stage = TelemetryRecorderStage(door, settings)
    log.info("recording", extra={"url": settings.influx_url, "bucket": settings.influx_bucket})
    await serve(door, [stage.writer.run], stop=stop)
