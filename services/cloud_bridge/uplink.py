"""The upload side of the bridge: spooled messages to the cloud broker.

Every message is in the spool before it gets here. Two lanes feed one sender:

* live — messages offered as they were spooled while the cloud link is up;
* backlog — the spool read in sequence order, page by page, skipping what
  the live lane holds or has sent.

The pacer (token_bucket.UplinkPacer) decides who goes when: live first, the
backlog with whatever of the budget live leaves (it may not touch a small
reserve of tokens kept for live). Messages confirmed by the cloud (PUBACK)
are removed from the spool in batches; a crash before that re-sends them,
with the same message id (cloud consumers deduplicate). Any failure to send
clears the live lane and restarts the backlog from the oldest spooled
message, so after a reconnect the cloud receives the backlog in order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from dataclasses import dataclass

from schemas.topic_spec import publish_bytes
from services.cloud_bridge.spool import Spool, SpoolDiskError, SpooledMessage
from services.cloud_bridge.token_bucket import Lane, UplinkPacer
from services.cloud_bridge.upload_accounting import UploadAccounting
from services.common.door import MqttDoor, PublishFailed
from services.common.pacing import wait_set
from services.common.stage_metrics import StageMetrics

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.5
BACKLOG_RECHECK_S = 0.05  # a backlog wait re-checks the pacer (a new budget) this often
MARK_BATCH = 256


def wire_bytes(message: SpooledMessage) -> int:
    """What the budget is charged for one message: its PUBLISH on the wire."""
    return publish_bytes(message.topic, message.payload)


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
    in_flight: int  # publishes awaiting their PUBACK at once


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
        # Messages spooled from this seq on, while the link is up, are live;
        # everything before is backlog. None: no live message since the link
        # (re)started, so the whole spool is backlog.
        self._live_from: int | None = None
        self._page: deque[SpooledMessage] = deque()
        self._cursor = 0  # highest seq the backlog has read
        self._claimed: set[int] = set()  # sent (or being sent) and not yet marked
        self._to_mark: list[int] = []
        self._link_epoch = -1
        self._link_broken = False  # a send failed: resend from the oldest
        self._in_flight: set[asyncio.Task[bool]] = set()
        self._wakeup = asyncio.Event()
        self._window = asyncio.Semaphore(policy.in_flight)
        self.space_freed = asyncio.Event()
        self.sent = 0

    # -- input ------------------------------------------------------------

    def offer_live(self, message: SpooledMessage) -> None:
        """A message just spooled (in seq order): send it ahead of the backlog."""
        self._wakeup.set()
        if not self._link_current() or message.seq in self._claimed:
            return  # the backlog sends it once the link is back, in order
        if len(self._live) >= self._policy.live_queue:
            # Live traffic outruns the link: priority is moot, order is not.
            self._metrics.count("live_lane_overflows")
            self._restart_from_oldest()
            return
        if self._live_from is None:
            self._live_from = message.seq
        self._live.append(message)
        self._pacer.live_waiting(wire_bytes(message))

    def _link_current(self) -> bool:
        return (
            not self._link_broken
            and self._cloud.connected.is_set()
            and self._cloud.reconnects == self._link_epoch
        )

    # -- sending ----------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        sending_done = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._mark_delivered_loop(sending_done))
            try:
                await self._send_loop(stop, tasks)
                if self._in_flight:  # their PUBACKs, so the last marking includes them
                    await asyncio.wait(list(self._in_flight))
            finally:
                sending_done.set()

    async def _send_loop(self, stop: asyncio.Event, tasks: asyncio.TaskGroup) -> None:
        # Sends overlap (a window of PUBACKs awaited at once); each task hands
        # its message to paho when it first runs, and tasks first run in the
        # order they were created, so the cloud receives them in order.
        while not stop.is_set():
            if not self._link_current():
                await self._abandon_in_flight()
                # Whatever happened while the link was down is backlog now.
                self._restart_from_oldest()
                self._link_broken = False
                await wait_set(self._cloud.connected, IDLE_POLL_S)
                self._link_epoch = self._cloud.reconnects
                continue
            self._wakeup.clear()
            # The window slot is taken before picking, so nothing awaits
            # between choosing a message and claiming it.
            await self._window.acquire()
            picked = await self._next()
            if picked is None:
                self._window.release()
                await wait_set(self._wakeup, IDLE_POLL_S)
                continue
            message, lane = picked
            size = wire_bytes(message)
            delay = self._pacer.delay_for(size, lane, time.monotonic())
            if delay > 0:
                self._put_back(message, lane)
                self._window.release()
                if lane == "live":
                    await asyncio.sleep(min(delay, IDLE_POLL_S))
                else:
                    # A live message arriving meanwhile may go at once on the
                    # reserve: it ends the wait instead of sitting behind it.
                    await wait_set(self._wakeup, min(delay, BACKLOG_RECHECK_S))
                continue
            # Charged when it leaves, so the overlap never overshoots the rate.
            self._pacer.record_sent(size, lane, time.monotonic())
            self._start_send(message, lane, size, tasks)

    def _start_send(
        self, message: SpooledMessage, lane: Lane, size: int, tasks: asyncio.TaskGroup
    ) -> None:
        """Claim the message and send it in a task of its own; the caller holds a
        window slot, which the task's end gives back."""
        self._claimed.add(message.seq)
        task = tasks.create_task(self._send(message, lane, size))
        self._in_flight.add(task)
        # A done callback, not a `finally` in `_send`: a task cancelled before
        # its first step (the link broke right after it was created) never
        # runs its body, and its claim and window slot would leak: the
        # message would then stay in the spool, skipped as "being sent".
        task.add_done_callback(functools.partial(self._send_ended, message.seq))

    def _send_ended(self, seq: int, task: asyncio.Task[bool]) -> None:
        self._in_flight.discard(task)
        self._window.release()
        if task.cancelled() or task.exception() is not None or not task.result():
            self._claimed.discard(seq)  # still spooled: sent again, in order

    async def _next(self) -> tuple[SpooledMessage, Lane] | None:
        while self._live:
            message = self._live.popleft()
            if message.seq not in self._claimed:
                return message, "live"
            self._pacer.live_cancelled(wire_bytes(message))
        while True:
            while self._page:
                message = self._page.popleft()
                if message.seq in self._claimed:
                    continue
                if self._live_from is not None and message.seq >= self._live_from:
                    continue  # the live lane has it
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

    async def _send(self, message: SpooledMessage, lane: Lane, size: int) -> bool:
        """Whether the cloud confirmed it (`_send_ended` cleans up either way)."""
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
            self._link_broken = True
            return False
        now = time.monotonic()
        topic_class, analytic = topic_class_and_analytic(self._cloud.root, message.topic)
        self._accounting.record(topic_class, analytic, size, now)
        self._to_mark.append(message.seq)
        self.sent += 1
        self._metrics.count(f"sent_{lane}")
        return True

    async def _abandon_in_flight(self) -> None:
        # Sends of a broken link would resolve (fail) only at their timeout,
        # after newer messages went out: cancel them now and resend all in order.
        pending = list(self._in_flight)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    def _restart_from_oldest(self) -> None:
        # Everything not confirmed is still spooled: send it again from the
        # oldest, in order (what is in flight stays claimed until it resolves).
        self._pacer.live_cancelled(sum(wire_bytes(m) for m in self._live))
        self._live.clear()
        self._live_from = None
        self._page.clear()
        self._cursor = 0

    async def _mark_delivered_loop(self, sending_done: asyncio.Event) -> None:
        while not sending_done.is_set():
            await wait_set(sending_done, self._policy.mark_every_s)
            await self.flush_delivered()

    async def flush_delivered(self) -> None:
        while self._to_mark:
            batch = self._to_mark[:MARK_BATCH]
            try:
                await asyncio.to_thread(self._spool.mark_delivered, batch)
            except SpoolDiskError as error:
                # Still spooled and claimed: marked again on the next round.
                self._metrics.count("mark_delivered_failed")
                log.warning("delivered messages not marked yet", extra={"error": str(error)})
                return
            del self._to_mark[: len(batch)]
            self._claimed.difference_update(batch)
            self.space_freed.set()
