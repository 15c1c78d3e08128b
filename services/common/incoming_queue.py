"""The queue between paho's receive callback and the door's dispatcher.

aiomqtt discards a message when its queue is full, which for a manually
acknowledged QoS 1 message means it is never acknowledged and stalls until the
next reconnect. So this queue never refuses a QoS 1 message — their number is
already bounded by the MQTT 5 Receive Maximum we announce, because the broker
sends no more unacknowledged ones than that — and bounds QoS 0 messages
(frames, chunks) by dropping the oldest: for real-time data the newest matters.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from services.common.stage_metrics import StageMetrics


class IncomingQueue(asyncio.Queue[Any]):
    """asyncio.Queue holding at most `max_qos0` QoS 0 messages."""

    max_qos0 = 256
    metrics: StageMetrics | None = None

    def __init__(self, maxsize: int = 0) -> None:
        # aiomqtt passes maxsize; our bound is per QoS, so the asyncio one is off.
        super().__init__(maxsize=0)
        self.qos0_held = 0
        self.qos0_dropped = 0

    def _init(self, maxsize: int) -> None:
        # asyncio.Queue's qsize() and empty() read `_queue` directly.
        self._queue: deque[Any] = deque()

    def _put(self, item: Any) -> None:
        self._queue.append(item)
        if item.qos == 0:
            self.qos0_held += 1
            if self.qos0_held > self.max_qos0:
                self._drop_oldest_qos0()

    def _get(self) -> Any:
        item = self._queue.popleft()
        if item.qos == 0:
            self.qos0_held -= 1
        return item

    def _drop_oldest_qos0(self) -> None:
        for index, held in enumerate(self._queue):
            if held.qos == 0:
                del self._queue[index]
                self.qos0_held -= 1
                self.qos0_dropped += 1
                if self.metrics is not None:
                    self.metrics.count("qos0_dropped")
                return


def bounded_queue_type(max_qos0: int, metrics: StageMetrics) -> type[IncomingQueue]:
    """A queue class for aiomqtt's `queue_type` with this stage's bound and counters."""
    return type("StageIncomingQueue", (IncomingQueue,), {"max_qos0": max_qos0, "metrics": metrics})
