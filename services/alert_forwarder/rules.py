"""Per-event alert rules: which lifecycle events become alerts, and when.

Decisions made here, once:

* A rule matches on ``source`` and ``label`` (``*`` is a wildcard); the most
  specific rule wins (exact source and label, then exact source, then exact
  label, then ``*``/``*``). Two rules for the same pair are a config error.
* An event becomes an alert (``new``) on the first message for which every
  condition holds: rule enabled, score ≥ ``min_score``, in the required zones,
  lasted ``min_duration_s``, outside quiet hours unless critical, and no alert
  for the same source and label published or ended within ``cooldown_s``.
  Until then each message is reported as suppressed with the reason; an event
  that ends before qualifying is dropped. `tick` re-checks waiting events so
  a minimum duration is honoured even when no update arrives. If it ends
  having qualified only by its end, ``new`` and ``end`` go out together.
* Quiet hours are local-time windows (``22:00`` to ``06:30`` crosses midnight)
  in the config's timezone; during them only ``critical`` starts an alert.
  Updates and ends of an alert already out always go out, so no alert is
  left open by quiet hours; an event still going on when they end is
  alerted then (by `tick`).
* Severity is the rule's ``severity`` when set, else the event's hint, else
  ``warning``. An ``update`` is published only when severity or zones change.
* The alert id is derived from source and event id, so a restart or a
  redelivery produces the same id. Each decision carries the message id of
  the event message that caused it (for `tick`, the latest one seen): one
  event message makes at most one decision per action, so alert id, action
  and that message id name each alert message uniquely, even after a
  restart (see `alert_messages.alert_message_id`). Message ids already seen are dropped
  (bounded LRU). Tracked events are bounded; an alert whose end never comes
  is ended by `tick` after ``stale_after_s`` without messages.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from schemas.envelope import MAX_SECONDS, EventType, Model, field_error
from services.common.dedup import SeenIds

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[Severity, int] = {"info": 0, "warning": 1, "critical": 2}
SuppressReason = Literal[
    "duplicate", "disabled", "no_rule", "score", "zone", "too_short", "quiet_hours",
    "cooldown", "unchanged",
]  # fmt: skip
WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A lifecycle event from any analytic, mapped by the stage from its schema."""

    type: EventType
    event_id: str
    message_id: str
    source: str  # the sensor: camera, microphone or gas sensor id
    kind: str  # the modality: "object", "sound", "gas", ...
    label: str
    ts: float  # when this message was produced (epoch seconds)
    start_ts: float
    end_ts: float | None = None
    severity: Severity | None = None
    zones: frozenset[str] = frozenset()
    score: float | None = None


def max_severity(*levels: Severity) -> Severity:
    return max(levels, key=SEVERITY_RANK.__getitem__)


class QuietHours(Model):
    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise field_error("end", "must differ from 'start'")
        return self

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # crosses midnight


class AlertRule(Model):
    source: str = Field(WILDCARD, min_length=1)
    label: str = Field(WILDCARD, min_length=1)
    enabled: bool = True
    severity: Severity | None = None
    min_score: float = Field(0.0, ge=0.0, le=1.0)
    min_duration_s: float = Field(0.0, ge=0.0, le=MAX_SECONDS)
    cooldown_s: float = Field(0.0, ge=0.0, le=MAX_SECONDS)
    quiet_hours: tuple[QuietHours, ...] | None = Field(
        None, description="None inherits the config's quiet_hours; () means none"
    )
    required_zones: frozenset[str] = frozenset()
    zone_match: Literal["any", "all"] = "any"

    @model_validator(mode="after")
    def _zone_match_needs_zones(self) -> Self:
        if self.zone_match == "all" and not self.required_zones:
            raise field_error("zone_match", "'all' needs a non-empty 'required_zones'")
        return self

    def in_zones(self, zones: frozenset[str]) -> bool:
        if not self.required_zones:
            return True
        if self.zone_match == "all":
            return self.required_zones <= zones
        return bool(self.required_zones & zones)


class AlertRulesConfig(Model):
    timezone: str = "UTC"
    quiet_hours: tuple[QuietHours, ...] = ()
    rules: tuple[AlertRule, ...] = ()
    unmatched: Literal["forward", "suppress"] = "forward"
    dedup_capacity: int = Field(10_000, ge=1, le=1_000_000)
    max_tracked_events: int = Field(4096, ge=1, le=1_000_000)
    max_cooldown_keys: int = Field(4096, ge=1, le=1_000_000)
    stale_after_s: float = Field(600.0, gt=0, le=MAX_SECONDS)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"timezone: unknown IANA zone {name!r}") from error
        return name

    @model_validator(mode="after")
    def _one_rule_per_pair(self) -> Self:
        seen: dict[tuple[str, str], int] = {}
        for index, rule in enumerate(self.rules):
            pair = (rule.source, rule.label)
            if pair in seen:
                raise ValueError(
                    f"rules[{index}]: source={rule.source!r} label={rule.label!r} "
                    f"repeats rules[{seen[pair]}]"
                )
            seen[pair] = index
        return self

    def rule_for(self, source: str, label: str) -> AlertRule | None:
        by_pair = {(r.source, r.label): r for r in self.rules}
        for pair in ((source, label), (source, WILDCARD), (WILDCARD, label), (WILDCARD, WILDCARD)):
            if pair in by_pair:
                return by_pair[pair]
        return None


def alert_id_for(source: str, event_id: str) -> str:
    """Stable across restarts and redeliveries: a digest of source and event id."""
    return hashlib.blake2b(f"{source}\x00{event_id}".encode(), digest_size=10).hexdigest()


@dataclass(frozen=True, slots=True)
class PublishAlert:
    action: EventType
    alert_id: str
    sequence: int  # n-th message of this alert in this run (informational)
    source: str
    kind: str
    label: str
    severity: Severity
    zones: frozenset[str]
    start_ts: float
    end_ts: float | None
    score: float | None
    event_id: str
    # The event message this decision answers (for `tick` decisions: the
    # latest one seen); with alert_id and action it makes the message id.
    trigger_message_id: str


@dataclass(frozen=True, slots=True)
class SuppressedEvent:
    reason: SuppressReason
    source: str
    label: str
    event_id: str
    message_id: str


AlertDecision = PublishAlert | SuppressedEvent


@dataclass(slots=True)
class _Tracked:
    alert_id: str
    latest: IncomingEvent
    last_seen: float
    published: bool = False
    sequence: int = 0
    severity: Severity | None = None
    zones: frozenset[str] = field(default_factory=frozenset)


class AlertRules:
    def __init__(self, config: AlertRulesConfig) -> None:
        self._config = config
        self._zone = ZoneInfo(config.timezone)
        self._seen = SeenIds(config.dedup_capacity)
        self._tracked: OrderedDict[tuple[str, str], _Tracked] = OrderedDict()
        self._last_alert: OrderedDict[tuple[str, str], float] = OrderedDict()

    @property
    def config(self) -> AlertRulesConfig:
        return self._config

    def reconfigure(self, config: AlertRulesConfig) -> None:
        """A new retained config: rules change, tracked alerts carry on."""
        self._config = config
        self._zone = ZoneInfo(config.timezone)

    def handle(self, event: IncomingEvent) -> list[AlertDecision]:
        if not self._seen.first_time(event.message_id):
            return [_suppressed(event, "duplicate")]
        key = (event.source, event.event_id)
        tracked = self._tracked.get(key)
        if tracked is None:
            # An update or end without a new we saw (we restarted) starts tracking too.
            tracked = _Tracked(alert_id_for(event.source, event.event_id), event, event.ts)
            self._tracked[key] = tracked
            self._bound_tracked()
        tracked.latest = event
        tracked.last_seen = event.ts
        self._tracked.move_to_end(key)
        if tracked.published:
            return self._follow_up(key, tracked, event)
        decisions = self._try_start(tracked, now=event.ts)
        if event.type == "end":
            del self._tracked[key]
            if decisions and isinstance(decisions[0], PublishAlert):
                decisions.append(self._end(tracked, event.end_ts or event.ts))
        return decisions

    def tick(self, now: float) -> list[AlertDecision]:
        """Start waiting events that now qualify; end alerts gone silent."""
        out: list[AlertDecision] = []
        for key, tracked in list(self._tracked.items()):
            if now - tracked.last_seen >= self._config.stale_after_s:
                del self._tracked[key]
                if tracked.published:
                    out.append(self._end(tracked, tracked.last_seen))
            elif not tracked.published:
                started = self._try_start(tracked, now)
                out.extend(d for d in started if isinstance(d, PublishAlert))
        return out

    def _try_start(self, tracked: _Tracked, now: float) -> list[AlertDecision]:
        event = tracked.latest
        rule = self._config.rule_for(event.source, event.label)
        reason = self._blocked_by(event, rule, now)
        if reason is not None:
            return [_suppressed(event, reason)]
        tracked.published = True
        tracked.severity = self._severity(event, rule)
        tracked.zones = event.zones
        self._remember_alert((event.source, event.label), now)
        return [self._publish("new", tracked, event.end_ts)]

    def _blocked_by(
        self, event: IncomingEvent, rule: AlertRule | None, now: float
    ) -> SuppressReason | None:
        if rule is None and self._config.unmatched == "suppress":
            return "no_rule"
        rule = rule or AlertRule()
        if not rule.enabled:
            return "disabled"
        if event.score is not None and event.score < rule.min_score:
            return "score"
        if not rule.in_zones(event.zones):
            return "zone"
        lasted = (event.end_ts if event.end_ts is not None else now) - event.start_ts
        if lasted < rule.min_duration_s:
            return "too_short"
        if self._severity(event, rule) != "critical" and self._quiet(rule, now):
            return "quiet_hours"
        last = self._last_alert.get((event.source, event.label))
        if last is not None and now - last < rule.cooldown_s:
            return "cooldown"
        return None

    def _follow_up(
        self, key: tuple[str, str], tracked: _Tracked, event: IncomingEvent
    ) -> list[AlertDecision]:
        if event.type == "end":
            del self._tracked[key]
            return [self._end(tracked, event.end_ts or event.ts)]
        rule = self._config.rule_for(event.source, event.label)
        severity = self._severity(event, rule)
        if severity == tracked.severity and event.zones == tracked.zones:
            return [_suppressed(event, "unchanged")]
        tracked.severity = severity
        tracked.zones = event.zones
        return [self._publish("update", tracked, None)]

    def _end(self, tracked: _Tracked, end_ts: float) -> PublishAlert:
        self._remember_alert((tracked.latest.source, tracked.latest.label), end_ts)
        return self._publish("end", tracked, end_ts)

    def _publish(self, action: EventType, tracked: _Tracked, end_ts: float | None) -> PublishAlert:
        event = tracked.latest
        decision = PublishAlert(
            action=action,
            alert_id=tracked.alert_id,
            sequence=tracked.sequence,
            source=event.source,
            kind=event.kind,
            label=event.label,
            severity=tracked.severity or "warning",
            zones=tracked.zones,
            start_ts=event.start_ts,
            end_ts=end_ts,
            score=event.score,
            event_id=event.event_id,
            trigger_message_id=event.message_id,
        )
        tracked.sequence += 1
        return decision

    def _severity(self, event: IncomingEvent, rule: AlertRule | None) -> Severity:
        if rule is not None and rule.severity is not None:
            return rule.severity
        return event.severity or "warning"

    def _quiet(self, rule: AlertRule, now: float) -> bool:
        windows = self._config.quiet_hours if rule.quiet_hours is None else rule.quiet_hours
        if not windows:
            return False
        local = datetime.fromtimestamp(now, self._zone).time()
        return any(window.contains(local) for window in windows)

    def _remember_alert(self, pair: tuple[str, str], ts: float) -> None:
        self._last_alert[pair] = max(ts, self._last_alert.get(pair, ts))
        self._last_alert.move_to_end(pair)
        while len(self._last_alert) > self._config.max_cooldown_keys:
            self._last_alert.popitem(last=False)

    def _bound_tracked(self) -> None:
        # The least recently active event goes; its alert, if any, gets no end.
        while len(self._tracked) > self._config.max_tracked_events:
            self._tracked.popitem(last=False)


def _suppressed(event: IncomingEvent, reason: SuppressReason) -> SuppressedEvent:
    return SuppressedEvent(reason, event.source, event.label, event.event_id, event.message_id)
