"""BGR frames -> the JPEG on `camera/<cam>/frame`, with OpenCV: camera-capture's
half of the frame's pixels (the detector's half is `jpeg_decode`, with simplejpeg).

A module of its own so that only a stage that encodes loads OpenCV: the
detector, which only decodes, is about 16 MB smaller per replica without it."""

from __future__ import annotations

import cv2
import numpy as np

from services.media.jpeg_frame import Frame, fit_size


def resize_to_fit(frame: Frame, max_width: int, max_height: int) -> Frame:
    height, width = frame.shape[:2]
    new_width, new_height = fit_size(width, height, max_width, max_height)
    if (new_width, new_height) == (width, height):
        return frame
    # INTER_AREA: the right filter for shrinking (no aliasing).
    resized = cv2.resize(frame, (new_width, new_height), interpolation=cv2.INTER_AREA)
    return np.asarray(resized, dtype=np.uint8)


def encode_jpeg(frame: Frame, quality: int) -> bytes:
    """A BGR frame (OpenCV's order, as captured) as JPEG bytes."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a frame of shape {frame.shape} as JPEG")
    return bytes(buffer.tobytes())
