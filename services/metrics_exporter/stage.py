"""The async shell of metrics-exporter: `metrics/+` and `health/+` in, the
Prometheus text format out on an HTTP port (prometheus-client's server, in its
own thread). Stages stay MQTT-only; this is the one stage that serves HTTP,
bound to localhost unless `http_host` says otherwise."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

from schemas.service import Health, Metrics
from schemas.topics import HEALTH, METRICS, METRICS_EXPORTER
from services.common.door import InvalidMessage, MqttDoor, Received
from services.common.stage_runner import serve
from services.metrics_exporter.settings import MetricsExporterSettings
from services.metrics_exporter.stage_samples import StageSamples

log = logging.getLogger(__name__)


class MetricsExporterStage:
    def __init__(self, door: MqttDoor, settings: MetricsExporterSettings) -> None:
        self._door = door
        self._settings = settings
        self.samples = StageSamples(
            settings.gateway_id, settings.stale_after_s, settings.max_stages
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.samples)
        door.subscribe(METRICS, self.on_metrics)
        door.subscribe(HEALTH, self.on_health)

    async def on_metrics(self, message: Received[Metrics]) -> None:
        if not self.samples.observe_metrics(
            message.params["stage"], message.payload, time.monotonic()
        ):
            raise InvalidMessage(f"more than {self._settings.max_stages} stages")

    async def on_health(self, message: Received[Health | None]) -> None:
        if not self.samples.observe_health(
            message.params["stage"], message.payload, time.monotonic()
        ):
            raise InvalidMessage(f"more than {self._settings.max_stages} stages")

    async def serve_http(self, stop: asyncio.Event) -> None:
        """Worker: the /metrics endpoint, until the stage stops."""
        settings = self._settings
        server, thread = await asyncio.to_thread(
            start_http_server, settings.http_port, settings.http_host, self.registry
        )
        log.info(
            "serving /metrics",
            extra={"host": settings.http_host, "port": server.server_port},
        )
        try:
            await stop.wait()
        finally:
            await asyncio.to_thread(server.shutdown)
            server.server_close()
            await asyncio.to_thread(thread.join, 5.0)


async def run(settings: MetricsExporterSettings, stop: asyncio.Event | None = None) -> None:
    door = MqttDoor(settings, METRICS_EXPORTER)
    stage = MetricsExporterStage(door, settings)
    await serve(door, [stage.serve_http], stop=stop)
