"""What one object event sends: the `ObjectEvent` message made from a
lifecycle event, and the JPEG crop of the object that goes out as its snapshot.

No MQTT, so `edgegw profile video` sizes the detector's output with the very
functions the stage publishes with.
"""

from __future__ import annotations

import cv2

from schemas.lifecycle import LifecycleStep, lifecycle_message, unit_score
from schemas.topics import OBJECT_DETECTOR
from schemas.video import Box, ObjectEvent
from services.media.jpeg_frame import Frame
from services.object_detector import events as lifecycle
from services.object_detector.ssd import DetectionBox

SNAPSHOT_MARGIN = 0.1  # of the box size, on every side of the crop
SNAPSHOT_QUALITY = 85


def crop_snapshot(frame: Frame, box: DetectionBox) -> bytes | None:
    height, width = frame.shape[:2]
    margin_x, margin_y = box.width * SNAPSHOT_MARGIN, box.height * SNAPSHOT_MARGIN
    x1, y1 = max(0, int(box.x1 - margin_x)), max(0, int(box.y1 - margin_y))
    x2, y2 = min(width, int(box.x2 + margin_x) + 1), min(height, int(box.y2 + margin_y) + 1)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    ok, buffer = cv2.imencode(
        ".jpg", frame[y1:y2, x1:x2], [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_QUALITY]
    )
    return bytes(buffer.tobytes()) if ok else None


def to_message(event: lifecycle.TrackedObjectChange, has_snapshot: bool) -> ObjectEvent:
    box = event.box
    step = LifecycleStep(event.type, event.id, event.sequence, event.start_time, event.end_time)
    return lifecycle_message(
        ObjectEvent,
        OBJECT_DETECTOR,
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
