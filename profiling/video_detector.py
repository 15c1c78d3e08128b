"""The detector half of `edgegw profile video`: result rate x snapshots,
measured on the reference run (see profiling.video for the definitions)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

from profiling.video_pipeline import (
    LABEL,
    FrameDetections,
    matched_ious,
    run_pipeline,
)
from schemas.topic_spec import publish_bytes
from schemas.topics import DETECTIONS, EVENT, OBJECT_DETECTOR, SNAPSHOT
from schemas.video import Box, DetectedObject, Detections
from services.media.jpeg_decode import RgbFrame, decode_jpeg
from services.media.video_profile import DetectorCosts, DetectorProfiledLevel
from services.object_detector.levels import DetectorUtilityShares
from services.object_detector.snapshots import crop_snapshot
from services.object_detector.ssd import SSDDetector
from services.object_tracker.events import to_message

RESULT_RATES = (0.5, 1.0, 2.0, 5.0, 10.0)
TOPIC_ROOT = "edgegw/gw-0001"  # a typical root: the topic is part of the bytes sent


def detections_bytes(per_frame: Sequence[FrameDetections], size: tuple[int, int]) -> float:
    width, height = size
    topic = DETECTIONS.topic(TOPIC_ROOT, camera="cam1")
    sizes = []
    for seq, found in enumerate(per_frame):
        message = Detections(
            source=OBJECT_DETECTOR,
            camera="cam1",
            seq=seq,
            capture_ts=1_800_000_000.123456 + seq,
            width=width,
            height=height,
            objects=[
                DetectedObject(
                    label=d.label,
                    score=min(1.0, d.score),
                    box=Box(
                        x1=d.box.x1 * width,
                        y1=d.box.y1 * height,
                        x2=d.box.x2 * width,
                        y2=d.box.y2 * height,
                    ),
                    track_id=7,
                )
                for d in found
            ],
            inference_ms=12.345,
        )
        sizes.append(publish_bytes(topic, message.to_bytes()))
    return statistics.fmean(sizes)


def profile_detector(
    detector: SSDDetector,
    frames: Sequence[RgbFrame],
    reference: list[FrameDetections],
    source_fps: float,
) -> tuple[list[DetectorProfiledLevel], DetectorCosts]:
    height, width = frames[0].shape[:2]
    run = run_pipeline(reference, range(len(frames)), source_fps, (width, height))
    seconds = len(frames) / source_fps
    snapshot_sizes, verified = [], 0
    new_events = [e for e in run.events if e.type == "new"]
    for event in new_events:
        crop = crop_snapshot(frames[round(event.frame_time * source_fps)], event.box)
        if crop is None:
            continue
        snapshot_sizes.append(
            publish_bytes(SNAPSHOT.topic(TOPIC_ROOT, camera="cam1", label=LABEL), crop)
        )
        found = detector.detect(decode_jpeg(crop), min_score=0.5)
        verified += any(d.label == LABEL for d in found)
    event_topic = EVENT.topic(TOPIC_ROOT, source="cam1")
    costs = DetectorCosts(
        detections_bytes=round(detections_bytes(reference, (width, height)), 1),
        snapshot_bytes=round(statistics.fmean(snapshot_sizes), 1) if snapshot_sizes else 0.0,
        event_bytes=round(
            statistics.fmean(
                publish_bytes(event_topic, to_message(e, False).to_bytes()) for e in run.events
            ),
            1,
        )
        if run.events
        else 0.0,
        new_events_per_s=round(len(new_events) / seconds, 4),
        events_per_s=round(len(run.events) / seconds, 4),
    )
    snapshot_share = verified / len(new_events) if new_events else 1.0
    rows = []
    for rate in RESULT_RATES:
        # Published frames: the first, then each one at least 1/rate s after the last.
        published, last = [], -1e9
        for index in range(len(frames)):
            if index / source_fps - last >= 1 / rate - 1e-9:
                published.append(index)
                last = index / source_fps
        held = np.searchsorted(published, np.arange(len(frames)), side="right") - 1
        ious = [
            iou
            for i in range(len(frames))
            for iou in matched_ious(reference[i], reference[published[held[i]]])
        ]
        quality = statistics.fmean(ious) if ious else 1.0
        base_kbps = (
            (
                costs.detections_bytes * min(rate, source_fps)
                + costs.event_bytes * costs.events_per_s
            )
            * 8
            / 1000
        )
        for snapshots in (False, True):
            share = snapshot_share if snapshots else 0.0
            extra = costs.snapshot_bytes * costs.new_events_per_s * 8 / 1000 if snapshots else 0.0
            rows.append(
                DetectorProfiledLevel(
                    result_rate=rate,
                    snapshots=snapshots,
                    # The default shares; the stage re-scores with the operator's.
                    utility=DetectorUtilityShares().utility(quality, share),
                    results_quality=round(quality, 4),
                    snapshot_share=round(share, 4),
                    cost_kbps=round(base_kbps + extra, 2),
                )
            )
    return rows, costs
