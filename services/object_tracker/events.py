"""Turn tracks into the few messages a person wants: one lifecycle per object.

An object of interest gets `new` once (when its track is confirmed and its
best score reaches the minimum), `update` only when something material
changes (a better score, a zone entered or left, or a periodic refresh), and
`end` when its track ends. Every message of one object carries the same
event id, so consumers can deduplicate and join them. The fields follow what
Frigate users know: id, camera, label, score, top_score, box, current and
entered zones, start and end time.

What one change sends is here too: its `ObjectEvent` message (built by the
shared lifecycle builder) and, for `new`, the JPEG crop of the object as its
snapshot. No MQTT, so `edgegw profile video` sizes the detector's output
with the very functions the stage publishes with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas.envelope import EventType, LifecycleStep, lifecycle_message, unit_score
from schemas.topics import OBJECT_TRACKER
from schemas.video import Box, DetectionBox, ObjectEvent
from services.object_tracker.tracker import TrackedObject, TrackerStep
from services.object_tracker.zones import Zone, zones_containing


@dataclass(frozen=True)
class TrackedObjectChange:
    type: EventType
    id: str  # the same for new, every update and end of one object
    sequence: int  # 0 for new, then 1, 2, ... so a re-sent message keeps its identity
    camera: str
    label: str
    score: float
    top_score: float
    box: DetectionBox  # pixels of the frame it was seen in
    frame_width: int
    frame_height: int
    current_zones: frozenset[str]
    entered_zones: tuple[str, ...]  # in the order they were entered
    start_time: float
    end_time: float | None  # set on `end` only
    frame_time: float


@dataclass
class _OpenEvent:
    event_id: str
    start_time: float
    sequence: int = 0
    reported_top_score: float = 0.0
    reported_zones: frozenset[str] = frozenset()
    reported_at: float = 0.0
    current_zones: frozenset[str] = frozenset()
    entered_zones: list[str] = field(default_factory=list)
    # Consecutive matched frames each zone has held the object for.
    zone_streaks: dict[str, int] = field(default_factory=dict)
    frame_width: int = 0
    frame_height: int = 0


def event_id_for(camera: str, track: TrackedObject) -> str:
    """Deterministic, so a replay of the same frames names events the same way."""
    return f"{camera}.{round(track.first_seen * 1000)}.{track.track_id}"


class ObjectEventBuilder:
    """Events of one camera. Feed it every tracker step, in order."""

    def __init__(
        self,
        camera: str,
        zones: Sequence[Zone] = (),
        labels: frozenset[str] | None = None,
        min_score: float = 0.5,
        score_step: float = 0.05,
        zone_inertia: int = 3,
        refresh_interval_s: float = 60.0,
        max_open_events: int = 256,
    ) -> None:
        if not camera:
            raise ValueError("camera must not be empty")
        if zone_inertia < 1 or max_open_events < 1:
            raise ValueError("zone_inertia and max_open_events must be >= 1")
        self._camera = camera
        self._zones = tuple(zones)
        self._labels = labels  # None: every label is of interest
        self._min_score = min_score
        self._score_step = score_step
        self._zone_inertia = zone_inertia
        self._refresh_interval_s = refresh_interval_s
        self._max_open_events = max_open_events
        self._open: dict[int, _OpenEvent] = {}

    def reconfigure(
        self, zones: Sequence[Zone], labels: frozenset[str] | None, min_score: float
    ) -> None:
        """New zones and interests from a config change; open events go on
        (they still end), new ones follow the new rules."""
        self._zones = tuple(zones)
        self._labels = labels
        self._min_score = min_score

    @property
    def open_events(self) -> int:
        return len(self._open)

    def update(
        self, step: TrackerStep, frame_time: float, frame_width: int, frame_height: int
    ) -> list[TrackedObjectChange]:
        events: list[TrackedObjectChange] = []
        for track in step.active:
            event = self._on_active(track, frame_time, frame_width, frame_height)
            if event is not None:
                events.append(event)
        for track in step.ended:
            open_event = self._open.pop(track.track_id, None)
            if open_event is not None:
                open_event.sequence += 1
                events.append(self._event("end", open_event, track, frame_time, track.last_seen))
        return events

    def _interesting(self, track: TrackedObject) -> bool:
        if self._labels is not None and track.label not in self._labels:
            return False
        return track.confirmed and track.top_score >= self._min_score

    def _on_active(
        self, track: TrackedObject, frame_time: float, frame_width: int, frame_height: int
    ) -> TrackedObjectChange | None:
        open_event = self._open.get(track.track_id)
        if open_event is None:
            if not self._interesting(track) or len(self._open) >= self._max_open_events:
                return None
            open_event = _OpenEvent(
                event_id=event_id_for(self._camera, track), start_time=track.first_seen
            )
            self._open[track.track_id] = open_event
            self._follow_zones(open_event, track, frame_width, frame_height)
            return self._report("new", open_event, track, frame_time)

        # A coasting track has no new box: nothing about it changed.
        if not track.matched:
            return None
        self._follow_zones(open_event, track, frame_width, frame_height)
        score_rose = track.top_score >= open_event.reported_top_score + self._score_step
        zones_changed = open_event.current_zones != open_event.reported_zones
        stale = frame_time - open_event.reported_at >= self._refresh_interval_s
        if score_rose or zones_changed or stale:
            open_event.sequence += 1
            return self._report("update", open_event, track, frame_time)
        return None

    def _follow_zones(
        self, open_event: _OpenEvent, track: TrackedObject, frame_width: int, frame_height: int
    ) -> None:
        open_event.frame_width, open_event.frame_height = frame_width, frame_height
        if not self._zones:
            return
        inside = zones_containing(track.box, track.label, self._zones, frame_width, frame_height)
        # Inertia: a zone counts after `zone_inertia` consecutive frames, so a
        # box jittering over a zone's edge does not flap in and out.
        open_event.zone_streaks = {
            name: open_event.zone_streaks.get(name, 0) + 1 for name in inside
        }
        current = frozenset(
            name for name, streak in open_event.zone_streaks.items() if streak >= self._zone_inertia
        )
        open_event.current_zones = current
        for name in sorted(current):
            if name not in open_event.entered_zones:
                open_event.entered_zones.append(name)

    def _report(
        self, kind: EventType, open_event: _OpenEvent, track: TrackedObject, frame_time: float
    ) -> TrackedObjectChange:
        open_event.reported_top_score = track.top_score
        open_event.reported_zones = open_event.current_zones
        open_event.reported_at = frame_time
        return self._event(kind, open_event, track, frame_time, None)

    def _event(
        self,
        kind: EventType,
        open_event: _OpenEvent,
        track: TrackedObject,
        frame_time: float,
        end_time: float | None,
    ) -> TrackedObjectChange:
        return TrackedObjectChange(
            type=kind,
            id=open_event.event_id,
            sequence=open_event.sequence,
            camera=self._camera,
            label=track.label,
            score=track.score,
            top_score=track.top_score,
            box=track.box,
            frame_width=open_event.frame_width,
            frame_height=open_event.frame_height,
            current_zones=open_event.current_zones if kind != "end" else frozenset(),
            entered_zones=tuple(open_event.entered_zones),
            start_time=open_event.start_time,
            end_time=end_time,
            frame_time=frame_time,
        )


def to_message(event: TrackedObjectChange, has_snapshot: bool) -> ObjectEvent:
    box = event.box
    step = LifecycleStep(event.type, event.id, event.sequence, event.start_time, event.end_time)
    return lifecycle_message(
        ObjectEvent,
        OBJECT_TRACKER,
        step,
        camera=event.camera,
        label=event.label,
        score=unit_score(event.score),
        top_score=unit_score(event.top_score),
        box=Box(x1=box.x1, y1=box.y1, x2=box.x2, y2=box.y2),
        frame_width=max(1, event.frame_width),
        frame_height=max(1, event.frame_height),
        current_zones=sorted(event.current_zones),
        entered_zones=list(event.entered_zones),
        has_snapshot=has_snapshot,
        frame_ts=event.frame_time,
    )
