"""Messages every stage publishes about itself: status, health, metrics,
dead letters and the state of its runtime config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from schemas.envelope import Envelope, Model

ONLINE = "online"
OFFLINE = "offline"


class Health(Envelope):
    stage: str
    state: Literal["ok", "degraded"]
    uptime_s: float = Field(ge=0)
    connected: bool
    reconnects: int = Field(ge=0)
    detail: str = ""


class Metrics(Envelope):
    stage: str
    interval_s: float = Field(gt=0)
    counters: dict[str, int]
    gauges: dict[str, float]


class DeadLetter(Envelope):
    stage: str
    topic: str
    reason: str
    payload_bytes: int = Field(ge=0)
    excerpt: str = Field(description="the payload's first bytes, undecodable ones replaced")


class FieldError(Model):
    field: str
    reason: str


class ConfigState(Envelope):
    """What a stage did with the last `config/<stage>` message.

    `config_id` is a digest of the payload it answers, so whoever published the
    config can match this answer to its own request.
    """

    stage: str
    config_id: str
    generation: int = Field(ge=0, description="generation of the config now in force")
    status: Literal["accepted", "rejected"]
    errors: list[FieldError] = []
    applied: dict[str, JsonValue] = Field(description="the config now in force")
