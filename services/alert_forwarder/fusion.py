"""Fusion: coinciding events of different kinds in one place become one incident.

Decisions made here, once:

* A source belongs to a place through ``places`` (source -> place); events
  from unmapped sources are not fused (they still go through the rules).
* Two events coincide when their lifetimes, each stretched by ``window_s``,
  overlap: ``a.start <= b.last + window`` and ``b.start <= a.last + window``,
  where ``last`` is the end or, while the event is still going on, now
  (gas events may stay quiet for minutes between peaks).
* An incident starts (``new``) when events of at least ``min_kinds`` distinct
  kinds (gas, sound, object, ...) coincide in one place; it lists every
  coinciding event as a part. One incident per place is open at a time; a
  later event in that place that coincides with the incident joins it
  (``update``), whatever its kind.
* Severity is the maximum of the parts' severities (``warning`` when an event
  has no hint), raised by every configured escalation whose parts are all
  present (default: smoke gas + alarm sound + person => critical). An
  ``update`` goes out when a part joins or severity/escalations change.
* The incident ends (``end``) ``linger_s`` after its last part ended, unless
  an event joins in between; a part silent for ``stale_after_s`` counts as
  ended at its last message. `tick` emits ends; `handle` calls it first.
* The incident id is a digest of the place and its first part, so a replay of
  the same events yields the same id. Each decision carries the message id
  of the event that caused it (an end: the last event that changed the
  incident), which names the alert message with the incident id and action.
  Every collection is bounded.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Self

from pydantic import Field, model_validator

from schemas.envelope import MAX_SECONDS, EventType, Model, field_error
from services.alert_forwarder.rules import SEVERITY_RANK, IncomingEvent, Severity, max_severity
from services.common.dedup import SeenIds


class EscalationPart(Model):
    kind: str = Field(min_length=1)
    labels: frozenset[str] = Field(frozenset(), description="empty matches any label")

    def matches(self, kind: str, label: str) -> bool:
        return kind == self.kind and (not self.labels or label in self.labels)


class Escalation(Model):
    name: str = Field(min_length=1)
    parts: tuple[EscalationPart, ...] = Field(min_length=2)
    severity: Severity = "critical"


SMOKE_FIRE = Escalation(
    name="smoke_alarm_person",
    parts=(
        EscalationPart(kind="gas", labels=frozenset({"smoke", "smoke_high"})),
        EscalationPart(
            kind="sound",
            labels=frozenset(
                {"smoke_alarm", "fire_alarm", "Smoke detector, smoke alarm", "Fire alarm"}
            ),
        ),
        EscalationPart(kind="object", labels=frozenset({"person"})),
    ),
)


class FusionConfig(Model):
    places: dict[str, str] = Field(default_factory=dict, description="source -> place")
    window_s: float = Field(60.0, gt=0, le=MAX_SECONDS)
    min_kinds: int = Field(2, ge=2, le=64)
    linger_s: float = Field(30.0, ge=0, le=MAX_SECONDS)
    stale_after_s: float = Field(600.0, gt=0, le=MAX_SECONDS)
    escalations: tuple[Escalation, ...] = (SMOKE_FIRE,)
    max_parts: int = Field(32, ge=2, le=1000, description="parts listed per incident")
    max_candidates_per_place: int = Field(64, ge=1, le=100_000)
    max_places: int = Field(256, ge=1, le=100_000)
    dedup_capacity: int = Field(10_000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _check(self) -> Self:
        for source, place in self.places.items():
            if not source or not place:
                raise field_error(
                    f"places[{source!r}]", f"empty source or place in {source!r} -> {place!r}"
                )
        names = [escalation.name for escalation in self.escalations]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise field_error(f"escalations[{index}]", f"name {name!r} is used twice")
        return self


@dataclass(frozen=True, slots=True)
class IncidentPart:
    source: str
    event_id: str
    kind: str
    label: str
    severity: Severity
    start_ts: float
    end_ts: float | None


@dataclass(frozen=True, slots=True)
class IncidentDecision:
    action: EventType
    incident_id: str
    sequence: int
    place: str
    severity: Severity
    escalations: tuple[str, ...]
    parts: tuple[IncidentPart, ...]
    start_ts: float
    end_ts: float | None
    # The event message that caused this decision; for an end (from `tick`),
    # the last one that changed the incident. Makes the alert message id.
    trigger_message_id: str


@dataclass(slots=True)
class _Part:
    source: str
    event_id: str
    kind: str
    label: str
    severity: Severity
    start_ts: float
    last_ts: float
    end_ts: float | None = None

    def last(self, now: float) -> float:
        # An event still going on lasts until now, even if it has been quiet.
        return self.end_ts if self.end_ts is not None else max(self.last_ts, now)

    def frozen(self) -> IncidentPart:
        return IncidentPart(
            self.source, self.event_id, self.kind, self.label, self.severity,
            self.start_ts, self.end_ts,
        )  # fmt: skip


@dataclass(slots=True)
class _Incident:
    incident_id: str
    place: str
    parts: dict[tuple[str, str], _Part]
    severity: Severity = "info"
    escalations: tuple[str, ...] = ()
    sequence: int = 0
    ends_at: float | None = None
    last_message_id: str = ""


@dataclass(slots=True)
class _Place:
    candidates: OrderedDict[tuple[str, str], _Part] = field(default_factory=OrderedDict)
    incident: _Incident | None = None


class IncidentFusion:
    def __init__(self, config: FusionConfig) -> None:
        self._config = config
        self._seen = SeenIds(config.dedup_capacity)
        self._places: OrderedDict[str, _Place] = OrderedDict()

    def handle(self, event: IncomingEvent) -> list[IncidentDecision]:
        place_name = self._config.places.get(event.source)
        if place_name is None or not self._seen.first_time(event.message_id):
            return []
        out = self.tick(event.ts)
        place = self._place(place_name)
        key = (event.source, event.event_id)
        incident = place.incident
        if incident is not None and key in incident.parts:
            incident.last_message_id = event.message_id
            _refresh(incident.parts[key], event)
            out.extend(self._after_change(incident, joined=False))
            return out
        part = place.candidates.pop(key, None) or _new_part(event)
        _refresh(part, event)
        window = self._config.window_s
        if incident is not None and part.start_ts <= _last_activity(incident, event.ts) + window:
            if len(incident.parts) < self._config.max_parts:
                incident.last_message_id = event.message_id
                incident.parts[key] = part
                out.extend(self._after_change(incident, joined=True))
            return out
        place.candidates[key] = part
        while len(place.candidates) > self._config.max_candidates_per_place:
            place.candidates.popitem(last=False)
        together = [c for c in place.candidates.values() if _coincide(c, part, window, event.ts)]
        if len({c.kind for c in together}) >= self._config.min_kinds:
            out.append(self._open(place_name, place, together, event.message_id))
        return out

    def tick(self, now: float) -> list[IncidentDecision]:
        """End incidents whose linger has passed; forget events that can no longer fuse."""
        out: list[IncidentDecision] = []
        for place in self._places.values():
            incident = place.incident
            if incident is not None:
                for part in incident.parts.values():
                    if part.end_ts is None and now - part.last_ts >= self._config.stale_after_s:
                        part.end_ts = part.last_ts
                self._schedule_end(incident)
                if incident.ends_at is not None and now >= incident.ends_at:
                    end_ts = incident.ends_at - self._config.linger_s
                    out.append(self._decision("end", incident, end_ts=end_ts))
                    place.incident = None
            for key, part in list(place.candidates.items()):
                done = part.end_ts is not None and part.end_ts + self._config.window_s < now
                if done or now - part.last_ts >= self._config.stale_after_s:
                    del place.candidates[key]
        return out

    def _open(
        self, place_name: str, place: _Place, together: list[_Part], message_id: str
    ) -> IncidentDecision:
        together.sort(key=lambda p: (p.start_ts, p.source, p.event_id))
        together = together[: self._config.max_parts]
        first = together[0]
        digest = hashlib.blake2b(
            f"{place_name}\x00{first.source}\x00{first.event_id}".encode(), digest_size=10
        )
        incident = _Incident(digest.hexdigest(), place_name, {}, last_message_id=message_id)
        for part in together:
            place.candidates.pop((part.source, part.event_id), None)
            incident.parts[(part.source, part.event_id)] = part
        self._rate(incident)
        self._schedule_end(incident)
        place.incident = incident
        return self._decision("new", incident, end_ts=None)

    def _after_change(self, incident: _Incident, joined: bool) -> list[IncidentDecision]:
        before = (incident.severity, incident.escalations)
        self._rate(incident)
        self._schedule_end(incident)
        if joined or (incident.severity, incident.escalations) != before:
            return [self._decision("update", incident, end_ts=None)]
        return []

    def _rate(self, incident: _Incident) -> None:
        parts = incident.parts.values()
        severity = max_severity(*(p.severity for p in parts))
        fired: list[str] = []
        for escalation in self._config.escalations:
            if all(any(need.matches(p.kind, p.label) for p in parts) for need in escalation.parts):
                fired.append(escalation.name)
                severity = max_severity(severity, escalation.severity)
        # Severity never goes down within an incident: a part's hint may drop, the incident stands.
        if SEVERITY_RANK[severity] >= SEVERITY_RANK[incident.severity]:
            incident.severity = severity
        incident.escalations = tuple(sorted(set(incident.escalations) | set(fired)))

    def _schedule_end(self, incident: _Incident) -> None:
        if all(p.end_ts is not None for p in incident.parts.values()):
            last_end = max(p.end_ts or p.last_ts for p in incident.parts.values())
            incident.ends_at = last_end + self._config.linger_s
        else:
            incident.ends_at = None

    def _decision(
        self, action: EventType, incident: _Incident, end_ts: float | None
    ) -> IncidentDecision:
        parts = sorted(incident.parts.values(), key=lambda p: (p.start_ts, p.source, p.event_id))
        decision = IncidentDecision(
            action=action,
            incident_id=incident.incident_id,
            sequence=incident.sequence,
            place=incident.place,
            severity=incident.severity,
            escalations=incident.escalations,
            parts=tuple(p.frozen() for p in parts),
            start_ts=parts[0].start_ts,
            end_ts=end_ts,
            trigger_message_id=incident.last_message_id,
        )
        incident.sequence += 1
        return decision

    def _place(self, name: str) -> _Place:
        place = self._places.get(name)
        if place is None:
            place = self._places[name] = _Place()
            while len(self._places) > self._config.max_places:
                self._places.popitem(last=False)
        self._places.move_to_end(name)
        return place


def _new_part(event: IncomingEvent) -> _Part:
    return _Part(
        event.source, event.event_id, event.kind, event.label,
        event.severity or "warning", event.start_ts, event.ts,
    )  # fmt: skip


def _refresh(part: _Part, event: IncomingEvent) -> None:
    part.last_ts = max(part.last_ts, event.ts)
    part.label = event.label
    part.severity = event.severity or part.severity
    if event.type == "end":
        part.end_ts = event.end_ts if event.end_ts is not None else event.ts


def _coincide(a: _Part, b: _Part, window: float, now: float) -> bool:
    return a.start_ts <= b.last(now) + window and b.start_ts <= a.last(now) + window


def _last_activity(incident: _Incident, now: float) -> float:
    return max(p.last(now) for p in incident.parts.values())
