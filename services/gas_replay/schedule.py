"""When each reading is due, per sensor, at the period the QoS knob sets.

Simulated sensors are *sampled* at their period (each has its own clock; a
new period applies from the sensor's last sample, so a faster knob does not
wait out a slow period already scheduled). A trace is *forwarded* with
decimation: a sensor's row goes out only when at least its period has
passed (in trace time) since the last row forwarded for it.

Times are source seconds since the start; the stage paces them to the wall.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from schemas.gas import Gas
from services.gas_replay.simulator import SimulatedSensor
from services.gas_replay.trace import TraceRow

PeriodOf = Callable[[str], float]
# Float noise in trace times must not make a row miss its decimation slot.
TIME_TOLERANCE_S = 1e-6


@dataclass(frozen=True)
class Due:
    offset_s: float  # when to publish, in source time since the start
    sensor: str
    gas: Gas
    value: float


class SimulatedSchedule:
    def __init__(
        self,
        sensors: list[SimulatedSensor],
        period_of: PeriodOf,
        first_leak_after_s: float | None = None,
    ) -> None:
        self._sensors = sensors
        self._period_of = period_of
        self._first_leak_after_s = first_leak_after_s
        self._last: list[float | None] = [None] * len(sensors)
        self._queue = [(0.0, index) for index in range(len(sensors))]
        heapq.heapify(self._queue)

    def peek(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def pop(self) -> Due | None:
        t, index = heapq.heappop(self._queue)
        sensor = self._sensors[index]
        period = self._period_of(sensor.sensor)
        if index == 0 and self._first_leak_after_s is not None and t >= self._first_leak_after_s:
            sensor.start_leak(t)
            self._first_leak_after_s = None
        value = sensor.sample(t, period)
        self._last[index] = t
        heapq.heappush(self._queue, (t + period, index))
        return Due(t, sensor.sensor, sensor.gas, value)

    def reschedule(self, now_s: float) -> None:
        """Periods changed: each sensor's next sample is its last + its new
        period, but not in the past."""
        queue = []
        for t, index in self._queue:
            last = self._last[index]
            if last is not None:
                t = max(now_s, last + self._period_of(self._sensors[index].sensor))
            queue.append((t, index))
        heapq.heapify(queue)
        self._queue = queue


class TraceSchedule:
    def __init__(self, rows: Iterator[tuple[float, TraceRow]], period_of: PeriodOf) -> None:
        self._rows = rows
        self._period_of = period_of
        self._last: dict[str, float] = {}
        self._pending: tuple[float, TraceRow] | None = None

    def _forwarded(self, offset: float, row: TraceRow) -> bool:
        last = self._last.get(row.sensor)
        return last is None or offset - last >= self._period_of(row.sensor) - TIME_TOLERANCE_S

    def peek(self) -> float | None:
        """The next row the decimation lets through; rows it drops are skipped."""
        while True:
            if self._pending is None:
                self._pending = next(self._rows, None)
                if self._pending is None:
                    return None
            offset, row = self._pending
            if self._forwarded(offset, row):
                return offset
            self._pending = None

    def pop(self) -> Due | None:
        if self.peek() is None or self._pending is None:
            return None
        offset, row = self._pending
        self._pending = None
        self._last[row.sensor] = offset
        return Due(offset, row.sensor, row.gas, row.value)

    def reschedule(self, now_s: float) -> None:
        """Nothing to move: the next peek applies the new periods."""
