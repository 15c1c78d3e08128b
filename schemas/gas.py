"""Gas readings, their moving averages and threshold events."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from schemas.envelope import Envelope, EventType

# Gases the bundled sensors (MQ-2/MQ-7/MQ-9 style) report; a new sensor type
# extends this list together with its default thresholds.
Gas = Literal["co", "smoke", "methane", "lpg", "co2", "h2", "no2"]
SENSOR_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class GasReading(Envelope):
    sensor: str = Field(pattern=SENSOR_ID_PATTERN)
    gas: Gas
    value: float = Field(ge=0, description="concentration in `unit`")
    unit: Literal["ppm"] = "ppm"

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class GasAverage(Envelope):
    sensor: str
    gas: Gas
    time_window_s: float
    time_average: float
    time_samples: int
    count_window: int
    count_average: float
    count_samples: int
    last_value: float
    reading_id: str = Field(description="id of the reading that produced this average")


class GasEvent(Envelope):
    """A threshold episode on one sensor and gas: `new` when the average has
    stayed above `enter` for the minimum duration, `update` when it peaks
    higher, `end` when it falls below `exit`."""

    kind: Literal["gas"] = "gas"
    type: EventType
    event_id: str
    sensor: str
    gas: Gas
    label: str = Field(description="what the event is about, e.g. 'co_high'")
    severity: Literal["info", "warning", "critical"]
    value: float = Field(description="the average that caused this message")
    peak: float
    threshold: float
    start_ts: float
    end_ts: float | None = None
