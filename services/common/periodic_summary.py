"""`summary/<analytic>`: what an analytic saw in each period, for the cloud.

A summary is what the cloud gets instead of the raw stream: one small message
per period. `Tally` is the pure part (counts per key, bounded); the worker
publishes whatever was counted, every period, and nothing for an idle one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Protocol

from pydantic import JsonValue

from schemas.alerts import Summary
from schemas.topics import SUMMARY
from services.common.door import MqttDoor, PublishFailed
from services.common.pacing import wait_set

log = logging.getLogger(__name__)
OTHER = "_other"


class Period(Protocol):
    """What a summary worker takes every period: its start and values, None if idle."""

    def take(self, now: float) -> tuple[float, dict[str, JsonValue]] | None: ...


class Tally:
    """Named counters for one period; at most `max_keys` names (the rest: `_other`)."""

    def __init__(self, now: float, max_keys: int = 256) -> None:
        self._start = now
        self._max_keys = max_keys
        self._counts: dict[str, Counter[str]] = {}

    def add(self, group: str, key: str, amount: int = 1) -> None:
        counts = self._counts.setdefault(group, Counter())
        if key not in counts and len(counts) >= self._max_keys:
            key = OTHER
        counts[key] += amount

    def take(self, now: float) -> tuple[float, dict[str, JsonValue]] | None:
        """The period's counts (and start), then a fresh period; None if idle."""
        start, counts = self._start, self._counts
        self._start, self._counts = now, {}
        if not counts:
            return None
        values: dict[str, JsonValue] = {
            group: dict(sorted(counter.items())) for group, counter in sorted(counts.items())
        }
        return start, values


async def publish_summaries(
    door: MqttDoor, analytic: str, period: Period, period_s: float, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await wait_set(stop, period_s)
        now = time.time()
        taken = period.take(now)
        if taken is None:
            continue
        start, values = taken
        summary = Summary(
            source=door.user,
            analytic=analytic,
            period_s=period_s,
            start_ts=start,
            end_ts=now,
            values=values,
        )
        try:
            await door.publish(SUMMARY, summary, analytic=analytic)
        except PublishFailed as error:
            log.warning("summary not published", extra={"error": str(error)})
