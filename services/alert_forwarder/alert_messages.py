"""Translation at the edges of the rules: schema events in, `Alert` messages out.

Pure functions, no MQTT. The alert message id is `alert_message_id`: alert
id, action and a digest of the event message that caused the decision. Not
the in-memory sequence: after a restart the rules start counting again, so
an `end` of an alert opened before the restart would get the id of its `new`
and the cloud's dedup would drop it. A redelivered event still yields the
same id (the same event message makes the same decision), which the cloud
side deduplicates; distinct alert messages never share one.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from schemas.alerts import Alert, AlertPart
from schemas.audio import SoundEvent
from schemas.envelope import EventType, LifecycleStep, lifecycle_message
from schemas.gas import GasEvent
from schemas.topics import ALERT_FORWARDER
from schemas.video import ObjectEvent
from services.alert_forwarder.fusion import IncidentDecision
from services.alert_forwarder.rules import IncomingEvent, PublishAlert

AnyEventMessage = GasEvent | ObjectEvent | SoundEvent
PartKind = Literal["gas", "object", "sound"]
PART_KINDS: tuple[PartKind, ...] = ("gas", "object", "sound")


def incoming_from(event: AnyEventMessage, topic_source: str | None = None) -> IncomingEvent:
    """The modality-free view the rules and fusion work on.

    `topic_source` is the `<source>` level of the `event/<source>` topic the
    event arrived on: the broker's ACL checked it, and it becomes the level
    of `alert/<source>`, so it names the source; the payload's own sensor,
    camera or mic id stands in only where there is no topic (tests, tools).
    """
    severity = event.severity if isinstance(event, GasEvent) else None
    score = None if isinstance(event, GasEvent) else event.score
    zones: frozenset[str] = frozenset()
    if isinstance(event, ObjectEvent):
        zones = frozenset(event.current_zones) | frozenset(event.entered_zones)
    return IncomingEvent(
        type=event.type,
        event_id=event.event_id,
        message_id=event.id,
        source=topic_source or _payload_source(event),
        kind=event.kind,
        label=event.label,
        ts=event.ts,
        start_ts=event.start_ts,
        end_ts=event.end_ts,
        severity=severity,
        zones=zones,
        score=score,
    )


def _payload_source(event: AnyEventMessage) -> str:
    if isinstance(event, GasEvent):
        return event.sensor
    return event.camera if isinstance(event, ObjectEvent) else event.mic


def alert_message_id(alert_id: str, action: EventType, trigger_message_id: str) -> str:
    """`<alert_id>.<action>.<digest of the triggering event message id>`.

    An event message makes at most one decision per action for one alert, so
    two distinct alert messages never share an id.
    """
    digest = hashlib.blake2b(trigger_message_id.encode(), digest_size=8).hexdigest()
    return f"{alert_id}.{action}.{digest}"


def _part_kind(kind: str) -> PartKind:
    # AlertPart knows the three modalities of today; a new one must extend it.
    for known in PART_KINDS:
        if kind == known:
            return known
    raise ValueError(f"unknown event kind {kind!r}")


def alert_from_rule(decision: PublishAlert, now: float) -> Alert:
    """A single-source alert, published on `alert/<source>`."""
    zones = sorted(decision.zones)
    where = f" in {', '.join(zones)}" if zones else ""
    step = LifecycleStep(
        decision.action, decision.alert_id, decision.sequence, decision.start_ts, decision.end_ts
    )
    part = AlertPart(
        source=decision.source,
        kind=_part_kind(decision.kind),
        event_id=decision.event_id,
        label=decision.label,
    )
    return _alert(
        step,
        decision.trigger_message_id,
        now,
        label=decision.label,
        severity=decision.severity,
        parts=[part],
        zones=zones,
        summary=f"{decision.label} at {decision.source}{where} ({decision.action})",
    )


def alert_from_incident(decision: IncidentDecision, now: float) -> Alert:
    """An incident alert naming every part, published on `alert/<place>`."""
    labels = ", ".join(f"{p.kind} {p.label} at {p.source}" for p in decision.parts)
    step = LifecycleStep(
        decision.action, decision.incident_id, decision.sequence, decision.start_ts, decision.end_ts
    )
    parts = [
        AlertPart(source=p.source, kind=_part_kind(p.kind), event_id=p.event_id, label=p.label)
        for p in decision.parts
    ]
    return _alert(
        step,
        decision.trigger_message_id,
        now,
        label="incident",
        severity=decision.severity,
        place=decision.place,
        parts=parts,
        escalations=list(decision.escalations),
        summary=f"incident in {decision.place}: {labels} ({decision.action})",
    )


def _alert(step: LifecycleStep, trigger_message_id: str, now: float, **payload: Any) -> Alert:
    """The one way an alert decision becomes its message (see `alert_message_id`)."""
    message_id = alert_message_id(step.event_id, step.type, trigger_message_id)
    return lifecycle_message(
        Alert,
        ALERT_FORWARDER,
        step,
        life_id_field="alert_id",
        message_id=message_id,
        ts=now,
        sequence=step.sequence,
        **payload,
    )
