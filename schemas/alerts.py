"""Curated alerts, periodic summaries and upload accounting."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.envelope import (
    Count,
    Envelope,
    EventType,
    Kbps,
    Model,
    Name,
    SafeJson,
    Timestamp,
    TopicLevel,
)

Severity = Literal["info", "warning", "critical"]


class AlertPart(Model):
    """One event an alert is made of (an incident alert has several)."""

    source: Name
    kind: Literal["gas", "object", "sound"]
    event_id: Name
    label: Name


class Alert(Envelope):
    type: EventType
    alert_id: Name = Field(description="stable across new/update/end and redeliveries")
    sequence: Count = Field(
        default=0,
        ge=0,
        description="n-th message of this alert since the forwarder started (restarts count "
        "again); `id` is `<alert_id>.<type>.<digest of the triggering event message id>`",
    )
    label: Name
    severity: Severity
    place: TopicLevel | None = Field(default=None, description="the `<source>` of an incident")
    parts: list[AlertPart] = Field(min_length=1)
    start_ts: Timestamp
    end_ts: Timestamp | None = None
    summary: str = ""
    zones: list[str] = []
    escalations: list[str] = Field(default=[], description="fusion rules an incident met")


class Summary(Envelope):
    analytic: Name
    period_s: float = Field(gt=0)
    start_ts: Timestamp
    end_ts: Timestamp
    values: dict[str, SafeJson]


class UplinkUsage(Envelope):
    budget_kbps: Kbps | None
    window_s: float = Field(gt=0)
    used_kbps: Kbps
    bytes_by_class: dict[str, Count]
    bytes_by_analytic: dict[str, Count] = {}
    spool_entries: Count
    spool_bytes: Count
    losses: dict[str, Count] = Field(
        default={}, description="messages lost since the spool was created, per class_reason"
    )
    cloud_connected: bool
    budget_used: float | None = Field(
        default=None, ge=0, le=1e12, description="used_kbps / budget_kbps"
    )
    budget_source: Literal["config", "allocator"] = "config"
    spool_max_bytes: Count = 0
    messages_by_class: dict[str, Count] = {}
    analytic_rates_kbps: dict[str, Kbps] = Field(
        default={}, description="upload rate per analytic, from the allocator's knobs"
    )
    spool_disk_full: bool = Field(
        default=False, description="the spool's disk is full: messages wait at the broker"
    )
    spool_disk_errors: int = Field(default=0, ge=0, description="disk errors since start")


class TakenReceipt(Envelope):
    """From cloud-bridge to alert-forwarder: these alert messages are in the
    bridge's durable spool, so the forwarder may stop re-sending them."""

    message_ids: list[Name] = Field(min_length=1, max_length=1000)
