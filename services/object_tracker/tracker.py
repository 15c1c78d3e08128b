"""Give detections stable identities across frames (SORT-style, without the
Kalman filter): predict each track's box with a constant velocity, match
detections to predictions by IoU, greedily best pair first.

A track is confirmed only after `min_hits` matched frames, so a one-frame
false positive never becomes an object; a confirmed track survives
`max_misses` frames without a match (an occlusion, a missed detection) before
it ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from schemas.video import Detection, DetectionBox

_MAX_PREDICTED_STEPS = 3


@dataclass(frozen=True)
class TrackedObject:
    """A snapshot of one track after a frame."""

    track_id: int
    label: str
    box: DetectionBox
    score: float  # of the latest matched detection
    top_score: float
    hits: int
    first_seen: float
    last_seen: float  # time of the latest matched detection
    confirmed: bool
    matched: bool  # seen in this frame, rather than coasting on its prediction


@dataclass(frozen=True)
class TrackerStep:
    """What one frame changed: every live confirmed track, and those that ended."""

    active: tuple[TrackedObject, ...]
    ended: tuple[TrackedObject, ...]


@dataclass
class _Track:
    track_id: int
    label: str
    box: DetectionBox
    score: float
    first_seen: float
    last_seen: float
    hits: int = 1
    misses: int = 0
    confirmed: bool = False
    top_score: float = 0.0
    # DetectionBox centre and size change per frame, smoothed; the prediction uses it.
    velocity: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))

    def predicted_box(self) -> DetectionBox:
        dx, dy, dw, dh = self.velocity
        # Beyond a few frames a constant-velocity guess is worse than none.
        steps = min(self.misses + 1, _MAX_PREDICTED_STEPS)
        cx, cy = self.box.centre
        width = max(1.0, self.box.width + dw * steps)
        height = max(1.0, self.box.height + dh * steps)
        cx, cy = cx + dx * steps, cy + dy * steps
        return DetectionBox(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)

    def snapshot(self, matched: bool) -> TrackedObject:
        return TrackedObject(
            track_id=self.track_id,
            label=self.label,
            box=self.box,
            score=self.score,
            top_score=self.top_score,
            hits=self.hits,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            confirmed=self.confirmed,
            matched=matched,
        )


class IouTracker:
    """Tracks the objects of one camera. Feed it every detected frame in order."""

    # Defaults tuned on vtest.avi frames 0-149 (9 people): iou 0.3, 3 hits,
    # 20 misses and a 1-box jump gave 20 tracks; these give 13. Fragments came
    # from people lost for 2-4 s behind the sign post or inside a merged box
    # (longer memory, a wider jump gate) and from short-lived duplicate boxes
    # (more hits to confirm). Measured by tests/unit/test_tracker.py.
    def __init__(
        self,
        iou_threshold: float = 0.2,
        min_hits: int = 5,
        max_misses: int = 40,
        velocity_smoothing: float = 0.5,
        max_jump: float = 2.0,
        max_tracks: int = 256,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if min_hits < 1 or max_misses < 0 or max_tracks < 1:
            raise ValueError("min_hits >= 1, max_misses >= 0 and max_tracks >= 1 are required")
        self._iou_threshold = iou_threshold
        self._min_hits = min_hits
        self._max_misses = max_misses
        self._smoothing = velocity_smoothing
        # How far (in box sizes) a confirmed object may move between two
        # frames and still be matched without overlapping its prediction.
        self._max_jump = max_jump
        # A crowd of false positives must not grow memory without bound.
        self._max_tracks = max_tracks
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, detections: Sequence[Detection], ts: float) -> TrackerStep:
        matches, unmatched_detections = self._match(detections)
        matched_ids: set[int] = set()
        for track, detection in matches:
            self._absorb(track, detection, ts)
            matched_ids.add(track.track_id)

        ended: list[TrackedObject] = []
        survivors: list[_Track] = []
        for track in self._tracks:
            if track.track_id not in matched_ids:
                track.misses += 1
                # An unconfirmed track that misses once was most likely noise.
                if not track.confirmed or track.misses > self._max_misses:
                    if track.confirmed:
                        ended.append(track.snapshot(matched=False))
                    continue
            survivors.append(track)
        self._tracks = survivors

        for detection in unmatched_detections:
            if len(self._tracks) >= self._max_tracks:
                break
            # A second box on an object already tracked (the detector sometimes
            # returns two overlapping boxes for one person) must not become a
            # second object.
            if any(t.box.iou(detection.box) >= self._iou_threshold for t in self._tracks):
                continue
            self._tracks.append(self._start(detection, ts))

        active = tuple(
            t.snapshot(matched=t.track_id in matched_ids) for t in self._tracks if t.confirmed
        )
        return TrackerStep(active=active, ended=tuple(ended))

    def flush(self) -> tuple[TrackedObject, ...]:
        """End every confirmed track (the camera stopped); forget the rest."""
        ended = tuple(t.snapshot(matched=False) for t in self._tracks if t.confirmed)
        self._tracks = []
        return ended

    def _match(
        self, detections: Sequence[Detection]
    ) -> tuple[list[tuple[_Track, Detection]], list[Detection]]:
        """Confirmed tracks choose first, so a tentative duplicate cannot steal
        an established object's detection; then tentative tracks; then
        confirmed tracks that overlap nothing try a nearby detection of the
        same size (a small object that moved more than its own width)."""
        free = set(range(len(detections)))
        matches: list[tuple[_Track, Detection]] = []
        confirmed = [t for t in self._tracks if t.confirmed]
        tentative = [t for t in self._tracks if not t.confirmed]
        for group, score in (
            (confirmed, self._overlap),
            (tentative, self._overlap),
            (confirmed, self._nearness),
        ):
            unmatched = [t for t in group if all(t is not m for m, _ in matches)]
            matches.extend(self._greedy(unmatched, detections, free, score))
        return matches, [d for i, d in enumerate(detections) if i in free]

    def _greedy(
        self,
        tracks: list[_Track],
        detections: Sequence[Detection],
        free: set[int],
        score: Callable[[_Track, DetectionBox, Detection], float],
    ) -> list[tuple[_Track, Detection]]:
        candidates: list[tuple[float, int, int]] = []
        for ti, track in enumerate(tracks):
            predicted = track.predicted_box()
            for di in free:
                detection = detections[di]
                if detection.label == track.label:
                    value = score(track, predicted, detection)
                    if value > 0:
                        candidates.append((value, ti, di))
        candidates.sort(reverse=True)
        used: set[int] = set()
        matches: list[tuple[_Track, Detection]] = []
        for _, ti, di in candidates:
            if ti in used or di not in free:
                continue
            used.add(ti)
            free.discard(di)
            matches.append((tracks[ti], detections[di]))
        return matches

    def _overlap(self, track: _Track, predicted: DetectionBox, detection: Detection) -> float:
        overlap = predicted.iou(detection.box)
        return overlap if overlap >= self._iou_threshold else 0.0

    def _nearness(self, track: _Track, predicted: DetectionBox, detection: Detection) -> float:
        size, other = math.sqrt(predicted.area), math.sqrt(detection.box.area)
        if size <= 0 or not 0.5 <= other / size <= 2.0:
            return 0.0
        (px, py), (dx, dy) = predicted.centre, detection.box.centre
        distance = math.hypot(px - dx, py - dy) / size
        # The longer an object went unseen, the farther it may have gone.
        gate = self._max_jump * min(1.0 + 0.25 * track.misses, 2.0)
        return 1.0 / (1.0 + distance) if distance <= gate else 0.0

    def _absorb(self, track: _Track, detection: Detection, ts: float) -> None:
        steps = track.misses + 1
        (old_cx, old_cy), (new_cx, new_cy) = track.box.centre, detection.box.centre
        observed = (
            (new_cx - old_cx) / steps,
            (new_cy - old_cy) / steps,
            (detection.box.width - track.box.width) / steps,
            (detection.box.height - track.box.height) / steps,
        )
        a = self._smoothing
        track.velocity = (
            a * observed[0] + (1 - a) * track.velocity[0],
            a * observed[1] + (1 - a) * track.velocity[1],
            a * observed[2] + (1 - a) * track.velocity[2],
            a * observed[3] + (1 - a) * track.velocity[3],
        )
        track.box = detection.box
        track.score = detection.score
        track.last_seen = ts
        track.hits += 1
        track.misses = 0
        track.top_score = max(track.top_score, detection.score)
        if track.hits >= self._min_hits:
            track.confirmed = True

    def _start(self, detection: Detection, ts: float) -> _Track:
        track = _Track(
            track_id=self._next_id,
            label=detection.label,
            box=detection.box,
            score=detection.score,
            top_score=detection.score,
            first_seen=ts,
            last_seen=ts,
            confirmed=self._min_hits <= 1,
        )
        self._next_id += 1
        return track
