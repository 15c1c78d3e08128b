"""How a snapshot's crop reaches object-tracker, in bytes on the broker per
minute of the bundled video (`python -m profiling.video_snapshot_bytes`).

The detector is stateless: it cannot tell a new object from one it saw in a
frame another replica had. So it would have to attach the crop of every
detection of interest (every person in every frame), or the tracker takes the
frames too and crops the few `new` objects itself. Compared here on vtest.avi
(768x576, 10 fps, camera-capture's default JPEG quality), with the detector's
default threshold:

- frames: one more delivery of every frame (the tracker's subscription);
- crops: the JPEG crop of every detected person, as the detector would attach;
- snapshots: the crops the tracker really publishes (its `new` events).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from schemas.video import Detection
from services.media.jpeg_decode import decode_jpeg
from services.media.jpeg_encode import encode_jpeg
from services.object_detector.settings import DetectorConfig, ObjectDetectorSettings
from services.object_detector.snapshots import crop_snapshot
from services.object_detector.ssd import load_detector
from services.object_tracker.events import ObjectEventBuilder
from services.object_tracker.settings import ObjectTrackerSettings, TrackerConfig
from services.object_tracker.tracker import IouTracker

VIDEO = Path(__file__).resolve().parents[1] / ".cache" / "media" / "vtest.avi"
FPS = 10.0
SECONDS = 60
QUALITY = 80  # camera-capture's default jpeg_quality


def measure(seconds: int = SECONDS) -> dict[str, float]:
    settings = ObjectDetectorSettings()
    detector = load_detector(settings.model_path, settings.labels_path, 1)
    min_score = DetectorConfig().detection_min_score
    tracking, rules = ObjectTrackerSettings(), TrackerConfig()
    tracker = IouTracker(tracking.track_iou, tracking.track_min_hits, tracking.track_max_misses)
    events = ObjectEventBuilder("cam", labels=rules.label_filter, min_score=rules.min_score)
    capture = cv2.VideoCapture(str(VIDEO))
    frame_bytes = crop_bytes = snapshot_bytes = frames = 0
    while frames < seconds * FPS:
        ok, image = capture.read()
        if not ok:  # the clip is shorter than a minute: loop, as the demo does
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        jpeg = encode_jpeg(np.asarray(image, dtype=np.uint8), QUALITY)
        frame = decode_jpeg(jpeg)
        frame_bytes += len(jpeg)
        found: list[Detection] = detector.detect(frame, min_score=min_score)
        for detection in found:
            if detection.label in (rules.label_filter or {detection.label}):
                crop_bytes += len(crop_snapshot(frame, detection.box) or b"")
        ts = frames / FPS
        for change in events.update(tracker.update(found, ts), ts, frame.shape[1], frame.shape[0]):
            if change.type == "new":
                snapshot_bytes += len(crop_snapshot(frame, change.box) or b"")
        frames += 1
    per_minute = 60.0 / (frames / FPS) / 1e6
    return {
        "frames": frames,
        "frames_mb_per_min": round(frame_bytes * per_minute, 2),
        "all_crops_mb_per_min": round(crop_bytes * per_minute, 2),
        "snapshots_mb_per_min": round(snapshot_bytes * per_minute, 3),
    }


if __name__ == "__main__":
    print(json.dumps(measure()))
