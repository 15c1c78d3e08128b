"""The async shell of alert-forwarder: events in, curated alerts out.

Every event goes through the per-source rules (alert on `alert/<source>`) and
through fusion (an incident on `alert/<place>`). Alerts are published at QoS 1
before the event is acknowledged, so a crash between the two makes the broker
redeliver the event and the alert is re-sent with the same message id.

With `confirm_with_bridge` (the default) each alert also stays in an outbox
until cloud-bridge confirms it has it on disk, and is published again until
then (`confirmation`): the gateway broker's own PUBACK does not survive a
broker crash within its autosave window. Without it (no bridge deployed:
nothing would ever confirm), an alert counts as delivered on the broker's
PUBACK, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time

from schemas.alerts import Alert
from schemas.topics import ALERT, ALERT_FORWARDER, EVENT
from services.alert_forwarder.alert_messages import (
    AnyEventMessage,
    alert_from_incident,
    alert_from_rule,
    incoming_from,
)
from services.alert_forwarder.confirmation import BridgeConfirmation, drop_unpublishable
from services.alert_forwarder.fusion import IncidentDecision, IncidentFusion
from services.alert_forwarder.rules import AlertDecision, AlertRules, PublishAlert
from services.alert_forwarder.settings import AlertForwarderConfig, AlertForwarderSettings
from services.alert_forwarder.webhooks import WebhookPolicy, WebhookSender
from services.common.door import MqttDoor, PublishFailed, Received
from services.common.pacing import wait_set
from services.common.runtime_config import RuntimeConfig
from services.common.stage_runner import Worker, serve

log = logging.getLogger(__name__)
PUBLISH_TRIES = 5


class AlertForwarderStage:
    def __init__(self, door: MqttDoor, settings: AlertForwarderSettings) -> None:
        self._door = door
        self._settings = settings
        self._stop = asyncio.Event()
        self.config = RuntimeConfig(door, AlertForwarderConfig, settings.initial_config())
        self._rules = AlertRules(self.config.current.rules)
        self._fusion_config = self.config.current.fusion
        self._fusion = IncidentFusion(self._fusion_config)
        self.config.on_change(self._reconfigure)
        self.webhooks = WebhookSender(
            WebhookPolicy(
                urls=tuple(settings.urls()),
                min_severity=settings.webhook_min_severity,
                queue_size=settings.webhook_queue,
                retries=settings.webhook_retries,
                timeout_s=settings.webhook_timeout_s,
                retry_initial_s=settings.webhook_retry_initial_s,
            ),
            door.metrics,
        )
        self.confirmation = (
            BridgeConfirmation(door, settings) if settings.confirm_with_bridge else None
        )
        door.subscribe(EVENT, self.on_event)

    def workers(self) -> list[Worker]:
        workers: list[Worker] = [
            self.tick,
            self.webhooks.run,
            self.watch_stop,
        ]
        if self.confirmation is not None:
            workers += [self.confirmation.receive, self.confirmation.resend]
        return workers

    def _reconfigure(self, config: AlertForwarderConfig) -> None:
        self._rules.reconfigure(config.rules)
        if config.fusion != self._fusion_config:
            # Fusion has no in-place reconfigure: open incidents start over.
            self._fusion = IncidentFusion(config.fusion)
            self._fusion_config = config.fusion

    async def on_event(self, message: Received[AnyEventMessage]) -> None:
        if self.confirmation is not None:
            # Backpressure: no new alerts while too many wait for the bridge.
            await self.confirmation.wait_for_room(self._stop)
        event = incoming_from(message.payload, message.params["source"])
        self._door.metrics.count(f"events_{event.kind}")
        # No await between the two: the tick worker never sees half an event.
        decisions = self._rules.handle(event)
        incidents = self._fusion.handle(event)
        await self._publish_decisions(decisions, incidents)

    async def _publish_decisions(
        self, decisions: list[AlertDecision], incidents: list[IncidentDecision]
    ) -> None:
        now = time.time()
        for decision in decisions:
            if isinstance(decision, PublishAlert):
                await self._publish(alert_from_rule(decision, now), decision.source)
            else:
                self._door.metrics.count(f"suppressed_{decision.reason}")
        for incident in incidents:
            await self._publish(alert_from_incident(incident, now), incident.place)

    async def _publish(self, alert: Alert, topic_source: str) -> None:
        size = len(alert.to_bytes())
        if size > ALERT.max_bytes:
            # The bridge would refuse it and never confirm it: re-sent forever.
            error = ValueError(f"{size} bytes is over the {ALERT.max_bytes}-byte alert limit")
            await drop_unpublishable(self._door, None, alert, topic_source, error)
            return
        if self.confirmation is not None:
            await self.confirmation.track(topic_source, alert)
        for attempt in range(PUBLISH_TRIES):
            try:
                await self._door.publish(ALERT, alert, source=topic_source)
                break
            except PublishFailed as error:
                # Raising would dead-letter (and acknowledge) the event: try
                # again while we run; the last failure goes up.
                log.warning("alert not confirmed", extra={"error": str(error), "try": attempt})
                if self.confirmation is not None:
                    break  # in the outbox: the re-send worker takes over
                if attempt == PUBLISH_TRIES - 1 or self._stop.is_set():
                    raise
            except Exception as error:  # one alert never ends the stage
                # Not a broker hiccup: this alert can never be published
                # (a bad topic level, a message the registry refuses).
                await drop_unpublishable(self._door, self.confirmation, alert, topic_source, error)
                return
        self._door.metrics.count(f"alerts_{alert.type}")
        self.webhooks.offer(alert)
        log.info(
            "alert",
            extra={"alert_id": alert.alert_id, "type": alert.type, "severity": alert.severity},
        )

    async def tick(self, stop: asyncio.Event) -> None:
        """Minimum durations, quiet hours ending, stale alerts, incident lingers."""
        while not stop.is_set():
            await wait_set(stop, self._settings.tick_interval_s)
            now = time.time()
            decisions = self._rules.tick(now)
            incidents = self._fusion.tick(now)
            try:
                await self._publish_decisions(decisions, incidents)
            except PublishFailed as error:
                log.error("alert from tick lost", extra={"error": str(error)})
            except Exception:  # one bad decision never ends the worker
                log.exception("alerts from tick lost")

    async def watch_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stop.set()


async def run(settings: AlertForwarderSettings, stop: asyncio.Event | None = None) -> None:
    door = MqttDoor(settings, ALERT_FORWARDER)
    stage = AlertForwarderStage(door, settings)
    await serve(door, stage.workers(), stop=stop)
