"""End-to-end confirmation of alerts by cloud-bridge (the async shell of `outbox`).

Every alert goes into the outbox before it is published; `uplink/taken`
receipts from the bridge take it out; a worker publishes again what stays
unconfirmed (see `outbox` for the schedule).

Receipts arrive on a second connection of their own. The event handler waits
for outbox room when it is full, and the door hands messages to handlers one
at a time: receipts on the same connection would queue behind the waiting
event and never free the room. `LeaveUnacknowledged` alone would not do
either: an unacknowledged event is only delivered again after a reconnect,
and once the broker has `receive_maximum` of them in flight it sends nothing
more on that connection, receipts included. So the handler waits (the broker
keeps the events queued in the forwarder's persistent session: honest
backpressure) and leaves the event unacknowledged only when the stage stops.
The receipt connection has a clean session: receipts missed while it is down
cost a re-send, which the bridge deduplicates and confirms again.

The outbox is written through to disk (`outbox_store`) before an alert is
first published, and confirmed entries leave the file each re-send round:
a restart publishes again whatever the bridge had not confirmed.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

from schemas.alerts import Alert, TakenReceipt
from schemas.topics import ALERT, ALERT_FORWARDER, TAKEN
from services.alert_forwarder.outbox import Outbox
from services.alert_forwarder.outbox_store import OutboxStore
from services.alert_forwarder.settings import AlertForwarderSettings
from services.common.door import LeaveUnacknowledged, MqttDoor, PublishFailed, Received
from services.common.pacing import wait_set
from services.common.stage_metrics import StageMetrics

log = logging.getLogger(__name__)
RESEND_POLL_S = 0.2
ROOM_POLL_S = 0.5
OUTBOX_NOT_STORED = "outbox not written to disk: a restart would lose alerts"


class BridgeConfirmation:
    def __init__(self, door: MqttDoor, settings: AlertForwarderSettings) -> None:
        self._door = door
        self._metrics: StageMetrics = door.metrics
        self._settings = settings
        self.outbox = Outbox(
            settings.outbox_max, settings.confirm_timeout_s, settings.confirm_backoff_cap_s
        )
        self._room = asyncio.Event()
        self._store = OutboxStore(settings.outbox_file())
        self._stored: set[str] = set()
        self._reload()
        self._receipts = MqttDoor(settings, ALERT_FORWARDER, announce=False)
        self._receipts.subscribe(TAKEN, self._on_receipt)
        self._report()

    def _reload(self) -> None:
        """Alerts an earlier run left unconfirmed: due for publishing now."""
        now = time.monotonic()
        for message_id, topic_source, raw in self._store.load():
            try:
                alert = Alert.model_validate_json(raw)
            except ValueError as error:
                log.warning("stored alert unreadable: dropped", extra={"error": str(error)})
                self._stored.add(message_id)  # removed from the file next round
                continue
            self.outbox.add(topic_source, alert, now, due_now=True)
            self._stored.add(message_id)
        if self._stored:
            log.info("unconfirmed alerts from the last run", extra={"count": len(self.outbox)})
            self._metrics.count("alerts_reloaded", len(self.outbox))

    async def track(self, topic_source: str, alert: Alert) -> None:
        """Call before publishing: a receipt may come back before the PUBACK.

        Returns once the alert is on disk (or the disk refused: then it is
        kept in memory only, and health says so)."""
        self.outbox.add(topic_source, alert, time.monotonic())
        self._report()
        if alert.id in self._stored:
            return
        try:
            await asyncio.to_thread(self._store.add, alert.id, topic_source, alert.to_bytes())
        except (sqlite3.Error, OSError) as error:
            self._metrics.count("outbox_store_failed")
            self._metrics.degraded = OUTBOX_NOT_STORED
            log.warning("alert not stored", extra={"error": str(error)})
            return
        self._stored.add(alert.id)
        if self._metrics.degraded == OUTBOX_NOT_STORED:
            self._metrics.degraded = None

    async def _forget_confirmed(self) -> None:
        """Take out of the file what left the outbox (confirmed or dropped)."""
        gone = [message_id for message_id in self._stored if message_id not in self.outbox]
        if not gone:
            return
        try:
            await asyncio.to_thread(self._store.remove, gone)
        except (sqlite3.Error, OSError) as error:
            # Kept on disk: a restart would send them again, harmlessly.
            log.warning("confirmed alerts not removed from disk", extra={"error": str(error)})
            return
        self._stored.difference_update(gone)

    async def wait_for_room(self, stopping: asyncio.Event) -> None:
        """Return once the outbox has room; raise LeaveUnacknowledged when stopping."""
        waited = False
        while not self.outbox.has_room:
            if stopping.is_set():
                raise LeaveUnacknowledged("stopping with the outbox full")
            if not waited:
                self._metrics.count("outbox_full_waits")
                self._metrics.degraded = "outbox full: waiting for cloud-bridge receipts"
                log.warning("outbox full: holding events", extra={"size": len(self.outbox)})
                waited = True
            self._room.clear()
            await wait_set(self._room, ROOM_POLL_S)
        if waited:
            self._metrics.degraded = None

    async def _on_receipt(self, message: Received[TakenReceipt]) -> None:
        confirmed = self.outbox.confirm(message.payload.message_ids)
        self._metrics.count("alerts_confirmed", confirmed)
        if self.outbox.has_room:
            self._room.set()
        self._report()

    def forget(self, alert: Alert) -> None:
        """Stop re-sending an alert that can never be published."""
        self.outbox.confirm([alert.id])
        if self.outbox.has_room:
            self._room.set()
        self._report()

    def _report(self) -> None:
        self._metrics.gauge("outbox_size", len(self.outbox))

    async def receive(self, stop: asyncio.Event) -> None:
        """Worker: the receipt connection."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._receipts.run())
            await stop.wait()
            self._receipts.close()

    async def resend(self, stop: asyncio.Event) -> None:
        """Worker: publish again what no receipt confirmed in time."""
        while not stop.is_set():
            await wait_set(stop, RESEND_POLL_S)
            await self._forget_confirmed()
            due = self.outbox.take_due(time.monotonic(), self._settings.resend_batch)
            for entry in due:
                if entry.alert.id not in self.outbox or stop.is_set():
                    continue  # confirmed while we were sending the batch
                try:
                    await self._door.publish(ALERT, entry.alert, source=entry.topic_source)
                except PublishFailed as error:
                    # Rescheduled already: the next round tries again.
                    self._metrics.count("resend_failed")
                    log.warning("re-send not confirmed", extra={"error": str(error)})
                    break
                except Exception as error:  # one alert never ends the worker
                    # It would fail the same way every round: drop it.
                    await drop_unpublishable(
                        self._door, self, entry.alert, entry.topic_source, error
                    )
                    continue
                self._metrics.count("alerts_resent")
            self._report()


async def drop_unpublishable(
    door: MqttDoor,
    confirmation: BridgeConfirmation | None,
    alert: Alert,
    topic_source: str,
    error: Exception,
) -> None:
    """An alert whose publish failed for another reason than the broker (a
    topic level or a message the registry refuses) fails the same way every
    time: it is dropped, out of the outbox, with an ERROR and a dead letter."""
    if confirmation is not None:
        confirmation.forget(alert)
    door.metrics.count("alerts_unpublishable")
    reason = f"alert on source {topic_source[:100]!r} cannot be published: {error!r}"
    log.error(
        "alert dropped: cannot be published",
        extra={"alert_id": alert.alert_id, "message_id": alert.id, "error": repr(error)},
    )
    await door.dead_letter(ALERT.filter(door.root), alert.to_bytes(), reason)
