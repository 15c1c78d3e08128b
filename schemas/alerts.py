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
    sequence: int = Field(
        default=0,
        ge=0,
        description="n-th message of this alert since the forwarder started (restarts count "
        "again); `id` is `<alert_id>.<type>.<digest of the triggering event message id>`",
    )
    label: str
    severity: Severity
    place: str | None = None
    parts: list[AlertPart] = Field(min_length=1)
    start_ts: float
    end_ts: float | None = None
    summary: str = ""
    zones: list[str] = []
    escalations: list[str] = Field(default=[], description="fusion rules an incident met")


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
    losses: dict[str, int] = Field(
        default={}, description="messages lost since the spool was created, per class_reason"
    )
    cloud_connected: bool
    budget_used: float | None = Field(default=None, description="used_kbps / budget_kbps")
    budget_source: Literal["config", "allocator"] = "config"
    spool_max_bytes: int = Field(default=0, ge=0)
    messages_by_class: dict[str, int] = {}
    analytic_rates_kbps: dict[str, float] = Field(
        default={}, description="upload rate per analytic, from the allocator's knobs"
    )
    spool_disk_full: bool = Field(
        default=False, description="the spool's disk is full: messages wait at the broker"
    )
    spool_disk_errors: int = Field(default=0, ge=0, description="disk errors since start")


class TakenReceipt(Envelope):
    """From cloud-bridge to alert-forwarder: these alert messages are in the
    bridge's durable spool, so the forwarder may stop re-sending them."""

    message_ids: list[str] = Field(min_length=1, max_length=1000)
