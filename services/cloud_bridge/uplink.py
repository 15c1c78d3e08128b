"""The upload side of the bridge: spooled messages to the cloud broker.

Every message is in the spool before it gets here. Two lanes feed one sender:

* live — messages offered as they were spooled while the cloud link is up;
* backlog — the spool read in sequence order, page by page, skipping what
  the live lane holds or has sent.

The pacer (token_bucket.UplinkPacer) decides who goes when: live first, the
backlog only at the rate left over. Messages confirmed by the cloud (PUBACK)
are removed from the spool in batches; a crash before that re-sends them,
with the same message id (cloud consumers deduplicate). Any failure to send
clears the live lane and restarts the backlog from the oldest spooled
message, so after a reconnect the cloud receives the backlog in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass

from services.cloud_bridge.spool import Spool, SpooledMessage, message_size
from services.cloud_bridge.token_bucket import Lane, UplinkPacer
from services.cloud_bridge.upload_accounting import UploadAccounting
from services.common.door import MqttDoor, PublishFailed
from services.common.stage_metrics import StageMetrics

log = logging.getLogger(__name__)

# A PUBLISH costs its topic and payload plus a fixed header, the topic length,
# a packet id and an empty property length: what the budget is charged.
MQTT_PUBLISH_OVERHEAD = 8
IDLE_POLL_S = 0.5
BACKLOG_RECHECK_S = 0.05  # a backlog wait re-checks for live messages this often
MARK_BATCH = 256


def wire_bytes(message: SpooledMessage) -> int:
    return message_size(message.topic, message.payload) + MQTT_PUBLISH_OVERHEAD


def topic_class_and_analytic(root: str, topic: str) -> tuple[str, str]:
    """`<root>/alert/kitchen` -> ("alert", "kitchen")."""
    levels = topic[len(root) + 1 :].split("/")
    return levels[0], (levels[1] if len(levels) > 1 else "")


@dataclass(frozen=True)
class UplinkPolicy:
    live_queue: int
    drain_page: int
    publish_timeout_s: float
    mark_every_s: float


class Uplink:
    def __init__(
        self,
        spool: Spool,
        cloud: MqttDoor,
        pacer: UplinkPacer,
        accounting: UploadAccounting,
        metrics: StageMetrics,
        policy: UplinkPolicy,
    ) -> None:
        self._spool = spool
        self._cloud = cloud
        self._pacer = pacer
        self._accounting = accounting
        self._metrics = metrics
        self._policy = policy
        self._live: deque[SpooledMessage] = deque()
        self._page: deque[SpooledMessage] = deque()
        self._cursor = 0  # highest seq the backlog has read
        self._claimed: set[int] = set()  # in the live lane, or sent and not yet marked
        self._to_mark: list[int] = []
        self._wakeup = asyncio.Event()
        self.space_freed = asyncio.Event()
        self.sent = 0

    # -- input ------------------------------------------------------------

    def offer_live(self, message: SpooledMessage) -> None:
        """A message just spooled: send it ahead of the backlog if the link is up."""
        if self._cloud.connected.is_set() and len(self._live) < self._policy.live_queue:
            self._live.append(message)
            self._claimed.add(message.seq)
            self._pacer.live_waiting(wire_bytes(message), time.monotonic())
        else:
            self._metrics.count("offered_to_backlog")
        self._wakeup.set()

    # -- sending ----------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            marker = tasks.create_task(self._mark_delivered_loop(stop))
            try:
                await self._send_loop(stop)
            finally:
                await marker

    async def _send_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self._cloud.connected.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cloud.connected.wait(), IDLE_POLL_S)
                continue
            picked = await self._next()
            if picked is None:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), IDLE_POLL_S)
                continue
            message, lane = picked
            size = wire_bytes(message)
            delay = self._pacer.delay_for(size, lane, time.monotonic())
            if delay > 0:
                self._put_back(message, lane)
                if lane == "backlog":
                    delay = min(delay, BACKLOG_RECHECK_S)
                await asyncio.sleep(min(delay, IDLE_POLL_S))
                continue
            await self._send(message, lane, size)

    async def _next(self) -> tuple[SpooledMessage, Lane] | None:
        if self._live:
            return self._live.popleft(), "live"
        while True:
            while self._page:
                message = self._page.popleft()
                if message.seq not in self._claimed:
                    return message, "backlog"
            page = await asyncio.to_thread(
                self._spool.oldest, self._policy.drain_page, self._cursor
            )
            if not page:
                return None
            self._cursor = page[-1].seq
            self._page.extend(page)

    def _put_back(self, message: SpooledMessage, lane: Lane) -> None:
        if lane == "live":
            self._live.appendleft(message)
        else:
            self._page.appendleft(message)

    async def _send(self, message: SpooledMessage, lane: Lane, size: int) -> None:
        self._claimed.add(message.seq)
        try:
            await self._cloud.forward(
                message.topic,
                message.payload,
                qos=message.qos,
                retain=message.retain,
                wait_s=self._policy.publish_timeout_s,
            )
        except PublishFailed as error:
            self._metrics.count("send_failures")
            log.warning("cloud did not confirm", extra={"topic": message.topic, "why": str(error)})
            if lane == "live":
                self._pacer.live_cancelled(size)
            self._claimed.discard(message.seq)
            self._restart_from_oldest()
            return
        now = time.monotonic()
        self._pacer.record_sent(size, lane, now)
        topic_class, analytic = topic_class_and_analytic(self._cloud.root, message.topic)
        self._accounting.record(topic_class, analytic, size, now)
        self._to_mark.append(message.seq)
        self.sent += 1
        self._metrics.count(f"sent_{lane}")

    def _restart_from_oldest(self) -> None:
        # What the live lane held is still spooled: the backlog sends it, in order.
        now_pending = sum(wire_bytes(m) for m in self._live)
        self._pacer.live_cancelled(now_pending)
        for message in self._live:
            self._claimed.discard(message.seq)
        self._live.clear()
        self._page.clear()
        self._cursor = 0

    async def _mark_delivered_loop(self, stop: asyncio.Event) -> None:
        while True:
            stopping = stop.is_set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._policy.mark_every_s)
            await self.flush_delivered()
            if stopping:
                return

    async def flush_delivered(self) -> None:
        while self._to_mark:
            batch, self._to_mark = self._to_mark[:MARK_BATCH], self._to_mark[MARK_BATCH:]
            await asyncio.to_thread(self._spool.mark_delivered, batch)
            self._claimed.difference_update(batch)
            self.space_freed.set()
