"""Recorded gas traces: CSV with a header `time,sensor,gas,value`.

`time` is seconds (since the epoch or since the trace's start) or an ISO 8601
timestamp. The whole file is checked before replay starts, so a bad trace
fails at start-up with the line that is wrong.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from schemas.gas import Gas, GasReading

COLUMNS = ("time", "sensor", "gas", "value")


class TraceError(ValueError):
    pass


@dataclass(frozen=True)
class TraceRow:
    time: float
    sensor: str
    gas: Gas
    value: float


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


def read_trace(path: Path) -> Iterator[TraceRow]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or tuple(reader.fieldnames[:4]) != COLUMNS:
            raise TraceError(f"{path}: header must start with {','.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            try:
                checked = GasReading(
                    source="trace",
                    sensor=row["sensor"],
                    gas=row["gas"],
                    value=float(row["value"]),
                    ts=_parse_time(row["time"]),
                )
            except (ValueError, ValidationError, TypeError) as error:
                raise TraceError(f"{path}:{line}: {error}") from None
            yield TraceRow(checked.ts, checked.sensor, checked.gas, checked.value)


def check_trace(path: Path) -> int:
    """Read the whole trace once; returns its row count or raises TraceError."""
    rows = 0
    previous = float("-inf")
    for row in read_trace(path):
        if row.time < previous:
            raise TraceError(f"{path}:{rows + 2}: time goes backwards ({row.time} < {previous})")
        previous = row.time
        rows += 1
    if rows == 0:
        raise TraceError(f"{path}: no rows")
    return rows


@dataclass(frozen=True)
class TracedSensor:
    gas: Gas
    interval_s: float  # median time between its rows; 0 with a single row


def trace_sensors(path: Path) -> dict[str, TracedSensor]:
    """Every sensor of the trace, its gas and how often it was recorded."""
    times: dict[str, list[float]] = {}
    gases: dict[str, Gas] = {}
    for row in read_trace(path):
        times.setdefault(row.sensor, []).append(row.time)
        gases.setdefault(row.sensor, row.gas)
    result = {}
    for sensor, stamps in times.items():
        gaps = sorted(b - a for a, b in itertools.pairwise(stamps))
        result[sensor] = TracedSensor(gases[sensor], gaps[len(gaps) // 2] if gaps else 0.0)
    return result
