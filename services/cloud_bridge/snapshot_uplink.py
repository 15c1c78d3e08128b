"""Camera snapshots to the cloud, each camera at the rate its analytic was given.

object-detector publishes, retained, the JPEG of the latest object of each
label on `snapshot/<cam>/<label>` when the allocator's level for
`detector.<cam>` has snapshots on. The bridge uploads them (retained on the
cloud too, like Frigate's snapshots) at no more than that analytic's
allocated rate (`AnalyticRates`), and only with budget the alerts and the
spool's backlog leave over (the pacer's `media` lane).

A snapshot is a picture of "now", not a record: it does not go to the SQLite
spool. One waits per topic and a newer one replaces it (counted as
superseded); at most `max_pending` topics wait, past that the oldest is
dropped (counted). What the gateway broker retains is sent again after a
bridge restart, so the latest picture of every camera and label still
reaches the cloud.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from schemas.topic_spec import publish_bytes
from services.cloud_bridge.analytic_rates import AnalyticRates
from services.cloud_bridge.token_bucket import UplinkPacer
from services.cloud_bridge.upload_accounting import UploadAccounting
from services.common.door import MqttDoor, PublishFailed
from services.common.pacing import wait_set
from services.common.stage_metrics import StageMetrics

log = logging.getLogger(__name__)

SNAPSHOT_CLASS = "snapshot"
IDLE_POLL_S = 0.5
# A wait for tokens re-checks this often: a newer snapshot of a cheaper
# camera may be ready before the one it is waiting on.
RECHECK_S = 0.05
RETRY_AFTER_FAILURE_S = 1.0


@dataclass(frozen=True, slots=True)
class PendingSnapshot:
    topic: str
    payload: bytes
    analytic: str

    @property
    def wire_bytes(self) -> int:
        return publish_bytes(self.topic, self.payload)


class LatestSnapshots:
    """The snapshots waiting to go: one per topic, oldest topic first."""

    def __init__(self, max_pending: int) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self._max = max_pending
        self._waiting: OrderedDict[str, PendingSnapshot] = OrderedDict()

    def __len__(self) -> int:
        return len(self._waiting)

    def put(self, snapshot: PendingSnapshot) -> tuple[bool, int]:
        """Queue `snapshot`; returns (replaced a waiting one, oldest dropped)."""
        replaced = self._waiting.pop(snapshot.topic, None) is not None
        self._waiting[snapshot.topic] = snapshot
        dropped = 0
        while len(self._waiting) > self._max:
            self._waiting.popitem(last=False)
            dropped += 1
        return replaced, dropped

    def put_back(self, snapshot: PendingSnapshot) -> None:
        """A send failed: wait again, first in line, unless a newer one came."""
        if snapshot.topic not in self._waiting and len(self._waiting) < self._max:
            self._waiting[snapshot.topic] = snapshot
            self._waiting.move_to_end(snapshot.topic, last=False)

    def pick(self, rates: AnalyticRates, now: float) -> tuple[PendingSnapshot | None, float]:
        """The first waiting snapshot whose analytic may send now, else the
        one ready soonest and how long until then (inf: none ever is)."""
        best: PendingSnapshot | None = None
        best_wait = math.inf
        for snapshot in self._waiting.values():
            wait = rates.delay_for(snapshot.analytic, snapshot.wire_bytes, now)
            if wait <= 0:
                return snapshot, 0.0
            if wait < best_wait:
                best, best_wait = snapshot, wait
        return best, best_wait

    def take(self, snapshot: PendingSnapshot) -> None:
        if self._waiting.get(snapshot.topic) is snapshot:
            del self._waiting[snapshot.topic]

    def clear(self) -> int:
        count = len(self._waiting)
        self._waiting.clear()
        return count


class SnapshotUplink:
    def __init__(
        self,
        cloud: MqttDoor,
        pacer: UplinkPacer,
        rates: AnalyticRates,
        accounting: UploadAccounting,
        metrics: StageMetrics,
        *,
        max_pending: int,
        publish_timeout_s: float,
    ) -> None:
        self._cloud = cloud
        self._pacer = pacer
        self._rates = rates
        self._accounting = accounting
        self._metrics = metrics
        self._pending = LatestSnapshots(max_pending)
        self._publish_timeout_s = publish_timeout_s
        self._wakeup = asyncio.Event()
        self.enabled = True
        self.sent = 0

    def offer(self, topic: str, payload: bytes, analytic: str) -> None:
        if not self.enabled:
            self._metrics.count("snapshots_not_uploaded")
            return
        replaced, dropped = self._pending.put(PendingSnapshot(topic, payload, analytic))
        if replaced:
            self._metrics.count("snapshots_superseded")
        if dropped:
            self._metrics.count("snapshots_dropped", dropped)
        self._metrics.gauge("snapshots_waiting", len(self._pending))
        self._wakeup.set()

    def set_enabled(self, enabled: bool) -> None:
        """The operator's `upload_snapshots`; turned off, what waits is not sent."""
        if not enabled:
            self._metrics.count("snapshots_not_uploaded", self._pending.clear())
        self.enabled = enabled

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self._cloud.connected.is_set():
                await wait_set(self._cloud.connected, IDLE_POLL_S)
                continue
            self._wakeup.clear()
            snapshot, wait = self._pending.pick(self._rates, time.monotonic())
            if snapshot is None or wait > 0:
                # Nothing waits, or every camera is out of tokens: sleep until
                # the first has enough, or a new snapshot arrives.
                await wait_set(self._wakeup, min(wait, IDLE_POLL_S))
                continue
            size = snapshot.wire_bytes
            shared = self._pacer.delay_for(size, "media", time.monotonic())
            if shared > 0:
                await asyncio.sleep(min(shared, RECHECK_S))
                continue
            self._pending.take(snapshot)
            now = time.monotonic()
            self._pacer.record_sent(size, "media", now)
            self._rates.consume(snapshot.analytic, size, now)
            if not await self._send(snapshot, size):
                await wait_set(stop, RETRY_AFTER_FAILURE_S)

    async def _send(self, snapshot: PendingSnapshot, size: int) -> bool:
        try:
            await self._cloud.forward(
                snapshot.topic,
                snapshot.payload,
                qos=1,
                retain=True,
                wait_s=self._publish_timeout_s,
            )
        except PublishFailed as error:
            self._metrics.count("snapshot_send_failures")
            why = str(error)
            log.warning("snapshot not confirmed", extra={"topic": snapshot.topic, "why": why})
            self._pending.put_back(snapshot)
            return False
        self._accounting.record(SNAPSHOT_CLASS, snapshot.analytic, size, time.monotonic())
        self._metrics.count("snapshots_sent")
        self._metrics.gauge("snapshots_waiting", len(self._pending))
        self.sent += 1
        return True
