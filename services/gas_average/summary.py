"""Periodic `summary/gas-average`: min, mean and max of every series per period.

A pure accumulator (no MQTT, time passed in); the common summary worker
(services.common.periodic_summary) publishes what it gathered every
`EDGEGW_SUMMARY_PERIOD_S` seconds. A summary is what the cloud gets instead
of the readings: one message per period for the whole site, a few hundred bytes.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from pydantic import JsonValue

from schemas.gas import GasReading
from schemas.topics import GAS_AVERAGE
from services.common.door import MqttDoor
from services.common.periodic_summary import OTHER, PeriodRows, capped_key, publish_summaries

OVERFLOW_SERIES = OTHER  # past the cap, extra series share one row


@dataclass(slots=True)
class _Stats:
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "n": self.count,
            "min": round(self.low, 3),
            "mean": round(self.total / self.count, 3),
            "max": round(self.high, 3),
        }


class GasSummaryAccumulator(PeriodRows[_Stats]):
    """Statistics per `sensor/gas` since the last `take`; bounded in series."""

    def __init__(self, start_ts: float, max_series: int = 500) -> None:
        super().__init__(start_ts)
        self._max_series = max_series

    def observe(self, sensor: str, gas: str, value: float) -> None:
        key = capped_key(self._rows, f"{sensor}/{gas}", self._max_series)
        self._rows.setdefault(key, _Stats()).add(value)

    def _values(self, rows: dict[str, _Stats]) -> dict[str, JsonValue]:
        return {
            "readings": sum(stats.count for stats in rows.values()),
            "series": {key: stats.as_json() for key, stats in sorted(rows.items())},
        }


class GasSummaryPublisher:
    def __init__(self, door: MqttDoor, period_s: float, max_series: int = 500) -> None:
        self._door = door
        self._period_s = period_s
        self._accumulator = GasSummaryAccumulator(time.time(), max_series)

    def observe(self, reading: GasReading) -> None:
        self._accumulator.observe(reading.sensor, reading.gas, reading.value)

    async def run(self, stop: asyncio.Event) -> None:
        await publish_summaries(self._door, GAS_AVERAGE, self._accumulator, self._period_s, stop)
