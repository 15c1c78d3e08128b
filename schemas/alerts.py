"""Curated alerts, periodic summaries and upload accounting."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from schemas.envelope import Envelope, EventType, Model

Severity = Literal["info", "warning", "critical"]


class AlertPart(Model):
    """One event an alert is made of (an incident alert has several)."""

    source: str
    kind: Literal["gas", "object", "sound"]
    event_id: str
    label: str


class Alert(Envelope):
    type: EventType
    alert_id: str = Field(description="stable across new/update/end and redeliveries")
    label: str
    severity: Severity
    place: str | None = None
    parts: list[AlertPart] = Field(min_length=1)
    start_ts: float
    end_ts: float | None = None
    summary: str = ""


class Summary(Envelope):
    analytic: str
    period_s: float = Field(gt=0)
    start_ts: float
    end_ts: float
    values: dict[str, JsonValue]


class UplinkUsage(Envelope):
    budget_kbps: float | None
    window_s: float = Field(gt=0)
    used_kbps: float = Field(ge=0)
    bytes_by_class: dict[str, int]
    bytes_by_analytic: dict[str, int] = {}
    spool_entries: int = Field(ge=0)
    spool_bytes: int = Field(ge=0)
    losses: dict[str, int] = {}
    cloud_connected: bool
