"""The JPEG crop of a detected object: its snapshot, should the tracker find
it new. Cut here, where the frame is decoded, so the frame itself never has to
travel to the tracker. The frame must be the full-size one: a crop is made of
the camera's pixels, not of what the model saw."""

from __future__ import annotations

import numpy as np
from PIL import Image

from schemas.video import DetectionBox
from services.media.jpeg_decode import encode_rgb_jpeg, frame_size
from services.object_detector.ssd import Frame

SNAPSHOT_MARGIN = 0.1  # of the box size, on every side of the crop
SNAPSHOT_QUALITY = 85


def crop_snapshot(frame: Frame, box: DetectionBox) -> bytes | None:
    width, height = frame_size(frame)
    margin_x, margin_y = box.width * SNAPSHOT_MARGIN, box.height * SNAPSHOT_MARGIN
    x1, y1 = max(0, int(box.x1 - margin_x)), max(0, int(box.y1 - margin_y))
    x2, y2 = min(width, int(box.x2 + margin_x) + 1), min(height, int(box.y2 + margin_y) + 1)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    if isinstance(frame, Image.Image):
        pixels = np.asarray(frame.crop((x1, y1, x2, y2)), dtype=np.uint8)
    else:
        pixels = frame[y1:y2, x1:x2]
    return encode_rgb_jpeg(pixels, SNAPSHOT_QUALITY)
