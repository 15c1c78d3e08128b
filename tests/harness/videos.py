"""Synthetic video files for camera-capture tests (a file is just another camera)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt


def write_video(path: Path, frames: Iterable[npt.NDArray[np.uint8]], fps: float = 10.0) -> Path:
    """An MJPG file of `frames` (BGR, all of the first one's size) at `fps`."""
    writer: cv2.VideoWriter | None = None
    for frame in frames:
        if writer is None:
            height, width = frame.shape[:2]
            fourcc = cv2.VideoWriter.fourcc(*"MJPG")
            writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
        writer.write(frame)
    assert writer is not None, f"{path}: no frames to write"
    writer.release()
    return path
