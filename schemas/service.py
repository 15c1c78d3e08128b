"""Messages every stage publishes about itself: status, health, metrics,
dead letters and the state of its runtime config."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from schemas.envelope import (
    MAX_INT,
    Count,
    Envelope,
    Int64,
    Model,
    Name,
    SafeJson,
    TopicLevel,
)

ONLINE = "online"
OFFLINE = "offline"


class Health(Envelope):
    stage: TopicLevel
    state: Literal["ok", "degraded"]
    uptime_s: float = Field(ge=0, le=1e10)
    connected: bool
    reconnects: Count
    detail: str = ""


class Metrics(Envelope):
    stage: TopicLevel
    interval_s: float = Field(gt=0)
    counters: dict[str, Int64]
    gauges: dict[str, float] = Field(description="non-finite readings are left out")

    @field_validator("gauges", mode="before")
    @classmethod
    def _leave_out_non_finite(cls, gauges: object) -> object:
        # A gauge that came out NaN or infinite (a rate over no time) is no
        # reading; leaving it out keeps the other gauges of the message.
        if isinstance(gauges, dict):
            return {
                name: value
                for name, value in gauges.items()
                if not (isinstance(value, float) and not math.isfinite(value))
            }
        return gauges


class DeadLetter(Envelope):
    stage: TopicLevel
    topic: str
    reason: str
    payload_bytes: Count
    excerpt: str = Field(description="the payload's first bytes, undecodable ones replaced")


class FieldError(Model):
    field: str
    reason: str


class ConfigState(Envelope):
    """What a stage did with the last `config/<stage>` message.

    `config_id` is a digest of the payload it answers, so whoever published the
    config can match this answer to its own request.
    """

    stage: TopicLevel
    config_id: Name
    generation: int = Field(
        ge=0, le=MAX_INT, strict=True, description="generation of the config now in force"
    )
    status: Literal["accepted", "rejected"]
    errors: list[FieldError] = []
    applied: dict[str, SafeJson] = Field(description="the config now in force")
