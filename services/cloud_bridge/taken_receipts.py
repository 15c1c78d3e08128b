"""`uplink/taken` receipts: tell alert-forwarder which alerts are safe on disk.

The forwarder keeps each alert and publishes it again until a receipt names
it (its outbox), because the gateway broker's PUBACK does not survive a
broker crash within its autosave window. An id is noted only after the spool
write is durable (stored, or already spooled or delivered: a re-send). Ids
are sent in batches (every `every_s`, or at once when `batch` are waiting),
at most 1000 per message (the schema's limit).

The buffer is bounded: past `buffer` ids the oldest are dropped (counted).
A dropped or unpublished receipt only costs a re-send, which the spool
deduplicates and which is confirmed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from schemas.alerts import TakenReceipt
from schemas.topics import CLOUD_BRIDGE, TAKEN
from services.common.door import MqttDoor, PublishFailed
from services.common.pacing import wait_set

log = logging.getLogger(__name__)
MAX_IDS_PER_RECEIPT = 1000


class TakenReceipts:
    def __init__(self, door: MqttDoor, every_s: float, batch: int, buffer: int) -> None:
        self._door = door
        self._every_s = every_s
        self._batch = min(batch, MAX_IDS_PER_RECEIPT)
        self._ids: deque[str] = deque()
        self._buffer = buffer
        self._full = asyncio.Event()

    def note(self, message_id: str) -> None:
        """An alert is durably in the spool (call after the write)."""
        self._ids.append(message_id)
        while len(self._ids) > self._buffer:
            self._ids.popleft()
            self._door.metrics.count("receipts_dropped")
        if len(self._ids) >= self._batch:
            self._full.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Worker: publish what was noted, batch by batch."""
        while not stop.is_set():
            await wait_set(self._full, self._every_s)
            self._full.clear()
            while self._ids:
                count = min(len(self._ids), self._batch)
                ids = [self._ids.popleft() for _ in range(count)]
                receipt = TakenReceipt(source=CLOUD_BRIDGE, message_ids=ids)
                try:
                    await self._door.publish(TAKEN, receipt)
                except PublishFailed as error:
                    # The forwarder sends these alerts again; we confirm them then.
                    self._door.metrics.count("receipts_failed")
                    log.warning("taken receipt not published", extra={"error": str(error)})
                    break
                self._door.metrics.count("receipts_sent")
                self._door.metrics.count("receipt_ids_sent", count)
