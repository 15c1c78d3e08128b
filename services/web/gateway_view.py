"""What the page shows, kept up to date from the broker's messages: each
stage's status, health, metrics and config; the uplink and its last hour; the
alerts, events and snapshots; the QoS levels, knobs and plan.

Pure state, no I/O: the stage feeds it messages (already validated, as JSON
values) and each change returns the update the browsers are sent. Everything
is bounded: alerts, events, snapshots and uplink points by count and age.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]
Update = tuple[str, Json]  # (kind, data): one server-sent event

MAX_EVENTS = 50
MAX_STAGES = 256
MAX_ANALYTICS = 256


@dataclass(frozen=True)
class UplinkPoint:
    ts: float
    used_kbps: float
    budget_kbps: float | None

    def as_json(self) -> Json:
        return {"ts": self.ts, "used_kbps": self.used_kbps, "budget_kbps": self.budget_kbps}


@dataclass
class GatewayView:
    history_s: float = 3600.0
    max_history_points: int = 3600
    max_alerts: int = 200
    max_snapshots: int = 48
    stages: dict[str, Json] = field(default_factory=dict)
    uplink: Json | None = None
    history: deque[UplinkPoint] = field(default_factory=deque)
    alerts: OrderedDict[str, Json] = field(default_factory=OrderedDict)
    events: deque[Json] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    snapshots: OrderedDict[str, Json] = field(default_factory=OrderedDict)
    thumbnails: dict[str, bytes] = field(default_factory=dict)
    levels: dict[str, Json] = field(default_factory=dict)
    knobs: dict[str, Json] = field(default_factory=dict)
    plan: Json | None = None
    broker_connected: bool = False

    def broker_link(self, connected: bool) -> Update:
        """Whether the stage hears the broker: without it, the page is stale."""
        self.broker_connected = connected
        return "link", {"connected": connected}

    # -- stages ---------------------------------------------------------------

    def _stage(self, stage: str) -> Json | None:
        row = self.stages.get(stage)
        if row is None:
            if len(self.stages) >= MAX_STAGES:
                return None
            row = self.stages[stage] = {}
        return row

    def stage_part(self, stage: str, part: str, value: object) -> Update | None:
        """Set one part (status, health, metrics, config, config_state) of a stage."""
        row = self._stage(stage)
        if row is None:
            return None
        if value is None:
            row.pop(part, None)
        else:
            row[part] = value
        return "stage", {"stage": stage, "row": row}

    # -- uplink ---------------------------------------------------------------

    def uplink_usage(self, usage: Json | None) -> Update:
        self.uplink = usage
        point = None
        if usage is not None:
            point = UplinkPoint(
                float(usage["ts"]), float(usage["used_kbps"]), usage.get("budget_kbps")
            )
            if self.history and point.ts < self.history[-1].ts:
                point = None  # a retained copy older than what we hold
            else:
                self.history.append(point)
        self._trim_history()
        return "uplink_usage", {"usage": usage, "point": point.as_json() if point else None}

    def _trim_history(self) -> None:
        if not self.history:
            return
        oldest = self.history[-1].ts - self.history_s
        while self.history and (
            self.history[0].ts < oldest or len(self.history) > self.max_history_points
        ):
            self.history.popleft()

    # -- alerts, events, snapshots -------------------------------------------

    def alert(self, source: str, alert: Json) -> Update:
        """An alert's new/update/end: one row per alert id, the newest first."""
        alert_id = str(alert["alert_id"])
        row = {**alert, "topic_source": source}
        self.alerts.pop(alert_id, None)
        self.alerts[alert_id] = row
        while len(self.alerts) > self.max_alerts:
            self.alerts.popitem(last=False)
        return "alert", row

    def event(self, source: str, event: Json) -> Update:
        row = {**event, "topic_source": source}
        self.events.append(row)
        return "event", row

    def snapshot(self, camera: str, label: str, ts: float, thumbnail: bytes | None) -> Update:
        key = f"{camera}/{label}"
        self.snapshots.pop(key, None)
        self.thumbnails.pop(key, None)
        row = {"camera": camera, "label": label, "ts": ts, "present": thumbnail is not None}
        if thumbnail is not None:
            self.snapshots[key] = row
            self.thumbnails[key] = thumbnail
            while len(self.snapshots) > self.max_snapshots:
                old, _ = self.snapshots.popitem(last=False)
                self.thumbnails.pop(old, None)
        return "snapshot", row

    # -- allocation -----------------------------------------------------------

    def analytic_part(self, kind: str, analytic: str, value: Json | None) -> Update | None:
        table = self.levels if kind == "levels" else self.knobs
        if value is None:
            table.pop(analytic, None)
        elif analytic in table or len(table) < MAX_ANALYTICS:
            table[analytic] = value
        else:
            return None
        return kind, {"analytic": analytic, "value": value}

    def allocator_plan(self, plan: Json | None) -> Update:
        self.plan = plan
        return "plan", {"plan": plan}

    # -- for a browser that just connected --------------------------------------

    def everything(self) -> Json:
        return {
            "stages": self.stages,
            "uplink_usage": self.uplink,
            "history": [point.as_json() for point in self.history],
            "history_s": self.history_s,
            "alerts": list(self.alerts.values()),
            "events": list(self.events),
            "snapshots": list(self.snapshots.values()),
            "levels": self.levels,
            "knobs": self.knobs,
            "plan": self.plan,
            "broker_connected": self.broker_connected,
        }
