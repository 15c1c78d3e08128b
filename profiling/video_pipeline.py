"""The pipeline pieces `edgegw profile video` runs in-process: frames of
the bundled video, the SSD detector, object-tracker's tracker and event
builder, and the comparisons against the reference run (see profiling.video
for what is measured and why)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from services.media.jpeg_decode import RgbFrame
from services.object_detector.ssd import Detection, DetectionBox, SSDDetector
from services.object_tracker.events import ObjectEventBuilder, TrackedObjectChange
from services.object_tracker.settings import ObjectTrackerSettings, TrackerConfig
from services.object_tracker.tracker import IouTracker, TrackerStep

EVENT_IOU = 0.3
DETECTION_IOU = 0.3
LABEL = "person"
CAMERA = "profile"

# Per frame: the detections, boxes in fractions of the frame (sizes differ per level).
FrameDetections = list[Detection]


@dataclass(frozen=True)
class Run:
    """What one level's pipeline produced on its kept frames."""

    kept: list[int]  # frame indices
    tracks: dict[int, dict[int, DetectionBox]]  # event track id -> frame index -> fractional box
    events: list[TrackedObjectChange]


def read_frames(video: Path, start: int, count: int) -> list[RgbFrame]:
    """`count` frames from `start` in RGB, the detector's order (OpenCV reads BGR)."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise SystemExit(f"cannot open {video}: run `make assets`")
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        frames: list[RgbFrame] = []
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), dtype=np.uint8))
    finally:
        capture.release()
    if not frames:
        raise SystemExit(f"{video} has no frames from {start}")
    return frames


def fractional(detections: Sequence[Detection], width: int, height: int) -> FrameDetections:
    return [
        Detection(
            d.label,
            d.score,
            DetectionBox(d.box.x1 / width, d.box.y1 / height, d.box.x2 / width, d.box.y2 / height),
        )
        for d in detections
    ]


def to_pixels(detections: Sequence[Detection], width: int, height: int) -> list[Detection]:
    return [
        Detection(
            d.label,
            d.score,
            DetectionBox(d.box.x1 * width, d.box.y1 * height, d.box.x2 * width, d.box.y2 * height),
        )
        for d in detections
    ]


def detect_all(
    detector: SSDDetector, frames: Sequence[RgbFrame], min_score: float
) -> list[FrameDetections]:
    out = []
    for frame in frames:
        height, width = frame.shape[:2]
        out.append(fractional(detector.detect(frame, min_score=min_score), width, height))
    return out


def matched_ious(reference: Sequence[Detection], found: Sequence[Detection]) -> list[float]:
    """One IoU per reference detection of LABEL: greedy best pairs, misses 0."""
    wanted = [d.box for d in reference if d.label == LABEL]
    offered = [d.box for d in found if d.label == LABEL]
    pairs = sorted(
        ((w.iou(o), i, j) for i, w in enumerate(wanted) for j, o in enumerate(offered)),
        reverse=True,
    )
    best = [0.0] * len(wanted)
    used_w: set[int] = set()
    used_o: set[int] = set()
    for iou, i, j in pairs:
        if iou < DETECTION_IOU:
            break
        if i not in used_w and j not in used_o:
            used_w.add(i)
            used_o.add(j)
            best[i] = iou
    return best


def run_pipeline(
    per_frame: Sequence[FrameDetections],
    kept: Sequence[int],
    source_fps: float,
    size: tuple[int, int],
) -> Run:
    """Tracker and event builder of object-tracker on the kept frames."""
    defaults, config = ObjectTrackerSettings(), TrackerConfig()
    tracker = IouTracker(defaults.track_iou, defaults.track_min_hits, defaults.track_max_misses)
    builder = ObjectEventBuilder(CAMERA, labels=config.label_filter, min_score=config.min_score)
    width, height = size
    boxes: dict[int, dict[int, DetectionBox]] = {}
    events: list[TrackedObjectChange] = []
    for index in kept:
        ts = index / source_fps
        step = tracker.update(to_pixels(per_frame[index], width, height), ts)
        for track in step.active:
            if track.matched:
                b = track.box
                box = DetectionBox(b.x1 / width, b.y1 / height, b.x2 / width, b.y2 / height)
                boxes.setdefault(track.track_id, {})[index] = box
        events.extend(builder.update(step, ts, width, height))
    # The segment's end closes every open event, as a stopping detector does.
    ended = TrackerStep(active=(), ended=tracker.flush())
    events.extend(builder.update(ended, len(per_frame) / source_fps, width, height))
    event_tracks = {int(e.id.rsplit(".", 1)[1]) for e in events if e.type == "new"}
    return Run(list(kept), {t: boxes.get(t, {}) for t in event_tracks}, events)


def event_recall(reference: Run, level: Run) -> float:
    if not reference.tracks:
        return 1.0
    pairs = []
    for r_id, r_boxes in reference.tracks.items():
        for l_id, l_boxes in level.tracks.items():
            common = r_boxes.keys() & l_boxes.keys()
            if common:
                iou = statistics.fmean(r_boxes[i].iou(l_boxes[i]) for i in common)
                pairs.append((iou, r_id, l_id))
    matched_r: set[int] = set()
    matched_l: set[int] = set()
    for iou, r_id, l_id in sorted(pairs, reverse=True):
        if iou < EVENT_IOU:
            break
        if r_id not in matched_r and l_id not in matched_l:
            matched_r.add(r_id)
            matched_l.add(l_id)
    return len(matched_r) / len(reference.tracks)


def mean_iou(
    reference: Sequence[FrameDetections], level: Sequence[FrameDetections], kept: Sequence[int]
) -> float:
    ious = [iou for i in kept for iou in matched_ious(reference[i], level[i])]
    return statistics.fmean(ious) if ious else 1.0
