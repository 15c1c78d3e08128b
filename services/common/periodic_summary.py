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
from collections.abc import Mapping
from typing import Generic, Protocol, TypeVar

from pydantic import JsonValue

from schemas.alerts import Summary
from schemas.topics import SUMMARY
from services.common.door import MqttDoor, PublishFailed
from services.common.pacing import wait_set

log = logging.getLogger(__name__)
OTHER = "_other"
RowT = TypeVar("RowT")


class Period(Protocol):
    """What a summary worker takes every period: its start and values, None if idle."""

    def take(self, now: float) -> tuple[float, dict[str, JsonValue]] | None: ...


class PeriodRows(Generic[RowT]):
    """Rows by key gathered over one period, then taken whole: the pure part
    of a summary. A subclass adds rows and says what they become."""

    def __init__(self, now: float) -> None:
        self._start = now
        self._rows: dict[str, RowT] = {}

    def take(self, now: float) -> tuple[float, dict[str, JsonValue]] | None:
        """The period's values (and start), then a fresh period; None if idle."""
        start, rows = self._start, self._rows
        self._start, self._rows = now, {}
        return (start, self._values(rows)) if rows else None

    def _values(self, rows: dict[str, RowT]) -> dict[str, JsonValue]:
        raise NotImplementedError


def capped_key(rows: Mapping[str, object], key: str, cap: int) -> str:
    """`key`, or `_other` when it would be a new row beyond `cap`: past the
    cap, the extra keys share one row."""
    return OTHER if key not in rows and len(rows) >= cap else key


class Tally(PeriodRows[Counter[str]]):
    """Named counters for one period; at most `max_keys` names (the rest: `_other`)."""

    def __init__(self, now: float, max_keys: int = 256) -> None:
        super().__init__(now)
        self._max_keys = max_keys

    def add(self, group: str, key: str, amount: int = 1) -> None:
        counts = self._rows.setdefault(group, Counter())
        counts[capped_key(counts, key, self._max_keys)] += amount

    def _values(self, rows: dict[str, Counter[str]]) -> dict[str, JsonValue]:
        return {group: dict(sorted(counter.items())) for group, counter in sorted(rows.items())}


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
