"""Gas readings, their moving averages and threshold events."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field

from schemas.envelope import (
    TOPIC_LEVEL_PATTERN,
    Count,
    Envelope,
    EventType,
    Name,
    Seconds,
    Timestamp,
    TopicLevel,
)

# Gases the bundled sensors (MQ-2/MQ-7/MQ-9 style) report; a new sensor type
# extends this list together with its default thresholds.
Gas = Literal["co", "smoke", "methane", "lpg", "co2", "h2", "no2"]
SENSOR_ID_PATTERN: Final = TOPIC_LEVEL_PATTERN
# A concentration in ppm: a million is all of the air.
MAX_PPM: Final = 1e6
Ppm = Annotated[float, Field(ge=0, le=MAX_PPM)]
# An average of ppm readings: may come out a rounding error below zero.
AveragePpm = Annotated[float, Field(ge=-1, le=MAX_PPM)]


class GasReading(Envelope):
    sensor: TopicLevel
    gas: Gas
    value: Ppm = Field(description="concentration in `unit`")
    unit: Literal["ppm"] = "ppm"


class GasAverage(Envelope):
    sensor: TopicLevel
    gas: Gas
    time_window_s: Seconds
    time_average: AveragePpm
    time_samples: Count
    count_window: Count
    count_average: AveragePpm
    count_samples: Count
    last_value: Ppm
    reading_id: Name = Field(description="id of the reading that produced this average")


class GasEvent(Envelope):
    """A threshold episode on one sensor and gas: `new` when the average has
    stayed above `enter` for the minimum duration, `update` when it peaks
    higher, `end` when it falls below `exit`."""

    kind: Literal["gas"] = "gas"
    type: EventType
    event_id: Name
    sensor: TopicLevel
    gas: Gas
    label: Name = Field(description="what the event is about, e.g. 'co_high'")
    severity: Literal["info", "warning", "critical"]
    value: AveragePpm = Field(description="the average that caused this message")
    peak: AveragePpm
    threshold: Ppm
    start_ts: Timestamp
    end_ts: Timestamp | None = None
