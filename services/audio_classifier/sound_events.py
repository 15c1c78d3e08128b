"""Per-patch YAMNet scores -> sound events (new / update / end) with hysteresis.

A site names the sounds it cares about as families of AudioSet classes
("glass" = Glass, Shatter, Breaking). A family's score in a patch is the best
score among its classes. An event starts when that score reaches `enter_score`
on `min_patches` consecutive patches, stays open while it remains at or above
`exit_score`, and ends after `end_patches` consecutive patches below it: two
thresholds and two counts, so a score hovering near one threshold does not
flap events on and off.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from schemas.envelope import EventType
from services.audio_classifier.yamnet import PatchScores


@dataclass(frozen=True)
class SoundClassOfInterest:
    """One family of AudioSet classes that becomes events, with its hysteresis."""

    label: str
    class_names: frozenset[str]
    enter_score: float = 0.5
    exit_score: float = 0.3
    min_patches: int = 1
    end_patches: int = 2

    def __post_init__(self) -> None:
        if not self.label:
            raise ValueError("label must not be empty")
        if not self.class_names:
            raise ValueError(f"{self.label}: class_names must not be empty")
        if not 0.0 < self.exit_score <= self.enter_score <= 1.0:
            raise ValueError(
                f"{self.label}: need 0 < exit_score <= enter_score <= 1, "
                f"got exit_score={self.exit_score} enter_score={self.enter_score}"
            )
        if self.min_patches < 1 or self.end_patches < 1:
            raise ValueError(f"{self.label}: min_patches and end_patches must be >= 1")


def _family(label: str, *names: str, enter_score: float = 0.5) -> SoundClassOfInterest:
    return SoundClassOfInterest(label=label, class_names=frozenset(names), enter_score=enter_score)


# AudioSet display names, exactly as in yamnet_class_map.csv. The generic
# "Alarm" parent is left out on purpose: YAMNet gives it to every ringing
# telephone, which is not what a site means by an alarm.
DEFAULT_CLASSES_OF_INTEREST: tuple[SoundClassOfInterest, ...] = (
    _family("glass_break", "Glass", "Shatter", "Breaking", enter_score=0.6),
    _family("alarm", "Alarm clock", "Buzzer", "Car alarm", "Fire alarm"),
    _family("smoke_alarm", "Smoke detector, smoke alarm", "Fire alarm"),
    _family(
        "siren",
        "Siren",
        "Civil defense siren",
        "Police car (siren)",
        "Ambulance (siren)",
        "Fire engine, fire truck (siren)",
    ),
    _family("gunshot", "Gunshot, gunfire", "Machine gun", "Artillery fire", "Explosion"),
    _family("scream", "Screaming", "Shout", "Yell", "Children shouting"),
    _family("dog_bark", "Bark", "Bow-wow", "Yip", "Growling", "Howl"),
    _family("baby_cry", "Baby cry, infant cry"),
)


@dataclass(frozen=True)
class SoundEpisodeChange:
    """One step of a sound event's life; `event_id` is the same from new to end."""

    kind: EventType
    event_id: str
    label: str
    top_class: str  # the family member with the best score so far
    score: float  # the family score of the patch that caused this step
    peak_score: float
    start_s: float  # stream time of the first patch at or above enter_score
    end_s: float  # stream time of the end of the last patch at or above exit_score
    patch_index: int


@dataclass
class _OpenEvent:
    event_id: str
    top_class: str
    peak_score: float
    start_s: float
    end_s: float
    patches_since_update: int = 0
    quiet_patches: int = 0


@dataclass
class _FamilyState:
    family: SoundClassOfInterest
    class_indexes: np.ndarray  # positions of the family's classes in the score vector
    candidate_patches: int = 0
    candidate_start_s: float = 0.0
    open_event: _OpenEvent | None = None


def _new_event_id() -> str:
    return uuid.uuid4().hex


class SoundEventTracker:
    """Hysteresis per family over one stream's patches; holds at most one open event per family.

    `update_every_patches` bounds how long an open event stays silent: an
    `update` goes out when its peak score rises (its `top_class` is then the
    class that scored it) or when that many patches have passed since the
    last one.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        classes_of_interest: Iterable[SoundClassOfInterest] = DEFAULT_CLASSES_OF_INTEREST,
        *,
        update_every_patches: int = 10,
        new_event_id: Callable[[], str] = _new_event_id,
    ) -> None:
        if update_every_patches < 1:
            raise ValueError("update_every_patches must be >= 1")
        position = {name: index for index, name in enumerate(class_names)}
        self._class_names = tuple(class_names)
        self._families: list[_FamilyState] = []
        for family in classes_of_interest:
            unknown = sorted(family.class_names - position.keys())
            if unknown:
                raise ValueError(f"{family.label}: not AudioSet classes of this model: {unknown}")
            indexes = np.array(sorted(position[name] for name in family.class_names))
            self._families.append(_FamilyState(family=family, class_indexes=indexes))
        labels = [state.family.label for state in self._families]
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate labels among classes of interest: {labels}")
        self._update_every = update_every_patches
        self._new_event_id = new_event_id

    @property
    def open_labels(self) -> tuple[str, ...]:
        return tuple(s.family.label for s in self._families if s.open_event is not None)

    def observe(self, patch: PatchScores) -> list[SoundEpisodeChange]:
        """Feed one patch (in stream order); returns the events it causes."""
        events: list[SoundEpisodeChange] = []
        for state in self._families:
            member_scores = patch.scores[state.class_indexes]
            best = int(np.argmax(member_scores))
            score = float(member_scores[best])
            leader = self._class_names[int(state.class_indexes[best])]
            if state.open_event is None:
                event = self._maybe_open(state, patch, score, leader)
            else:
                event = self._continue(state, patch, score, leader)
            if event is not None:
                events.append(event)
        return events

    def close_all(self, patch_index: int) -> list[SoundEpisodeChange]:
        """End every open event, e.g. when the stream stops or the config changes."""
        events = []
        for state in self._families:
            if state.open_event is not None:
                events.append(self._end(state, state.open_event.peak_score, patch_index))
            state.candidate_patches = 0
        return events

    def _maybe_open(
        self, state: _FamilyState, patch: PatchScores, score: float, leader: str
    ) -> SoundEpisodeChange | None:
        family = state.family
        if score < family.enter_score:
            state.candidate_patches = 0
            return None
        if state.candidate_patches == 0:
            state.candidate_start_s = patch.start_s
        state.candidate_patches += 1
        if state.candidate_patches < family.min_patches:
            return None
        state.candidate_patches = 0
        opened = _OpenEvent(
            event_id=self._new_event_id(),
            top_class=leader,
            peak_score=score,
            start_s=state.candidate_start_s,
            end_s=patch.end_s,
        )
        state.open_event = opened
        return self._event("new", state, opened, score, patch.index)

    def _continue(
        self, state: _FamilyState, patch: PatchScores, score: float, leader: str
    ) -> SoundEpisodeChange | None:
        opened = state.open_event
        assert opened is not None  # the caller checked
        if score < state.family.exit_score:
            opened.quiet_patches += 1
            if opened.quiet_patches >= state.family.end_patches:
                return self._end(state, score, patch.index)
            return None
        opened.quiet_patches = 0
        opened.end_s = patch.end_s
        opened.patches_since_update += 1
        rose = score > opened.peak_score
        if rose:
            opened.peak_score = score
            opened.top_class = leader
        if rose or opened.patches_since_update >= self._update_every:
            opened.patches_since_update = 0
            return self._event("update", state, opened, score, patch.index)
        return None

    def _end(self, state: _FamilyState, score: float, patch_index: int) -> SoundEpisodeChange:
        opened = state.open_event
        assert opened is not None  # the caller checked
        state.open_event = None
        return self._event("end", state, opened, score, patch_index)

    @staticmethod
    def _event(
        kind: EventType, state: _FamilyState, opened: _OpenEvent, score: float, patch_index: int
    ) -> SoundEpisodeChange:
        return SoundEpisodeChange(
            kind=kind,
            event_id=opened.event_id,
            label=state.family.label,
            top_class=opened.top_class,
            score=score,
            peak_score=opened.peak_score,
            start_s=opened.start_s,
            end_s=opened.end_s,
            patch_index=patch_index,
        )
