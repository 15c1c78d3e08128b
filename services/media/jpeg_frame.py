"""The JPEG frame on `camera/<cam>/frame`: its metadata as MQTT 5 user properties,
JPEG encode and decode, and the frame size knob that sets a camera's upload cost."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from schemas.envelope import MAX_INT, MAX_TIMESTAMP
from schemas.video import FRAME_PROPERTIES, MAX_SIDE

Frame = npt.NDArray[np.uint8]

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"


class CorruptJpegError(ValueError):
    """The bytes are not a complete JPEG image."""


class BadFrameMetaError(ValueError):
    """A frame's user properties are missing, not numbers or out of range."""


@dataclass(frozen=True)
class FrameMeta:
    """What travels beside the JPEG bytes of one frame (MQTT 5 user properties)."""

    seq: int
    capture_ts: float  # wall-clock time the frame was captured
    width: int
    height: int

    def to_properties(self) -> dict[str, str]:
        return {
            "seq": str(self.seq),
            "capture_ts": f"{self.capture_ts:.6f}",
            "width": str(self.width),
            "height": str(self.height),
        }

    @classmethod
    def from_properties(cls, properties: Mapping[str, str]) -> FrameMeta:
        """Raises BadFrameMetaError naming what is missing or wrong."""
        missing = [name for name in FRAME_PROPERTIES if name not in properties]
        if missing:
            raise BadFrameMetaError(f"frame properties missing: {', '.join(missing)}")
        try:
            seq = int(properties["seq"])
            capture_ts = float(properties["capture_ts"])
            width, height = int(properties["width"]), int(properties["height"])
        except ValueError as error:
            raise BadFrameMetaError(f"frame property is not a number: {error}") from None
        # The ranges of the models these become (Detections): refused here.
        if not (
            0 <= seq <= MAX_INT
            and 0 < width <= MAX_SIDE
            and 0 < height <= MAX_SIDE
            and math.isfinite(capture_ts)
            and 0 <= capture_ts <= MAX_TIMESTAMP / 2  # room for durations added to it
        ):
            raise BadFrameMetaError(
                f"frame properties out of range: seq={seq} capture_ts={capture_ts} "
                f"width={width} height={height}"
            )
        return cls(seq, capture_ts, width, height)


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest size within the limits that keeps the aspect ratio; never
    larger than the original (upscaling costs bandwidth and adds nothing)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if max_width <= 0 or max_height <= 0:
        raise ValueError(f"maximum size must be positive, got {max_width}x{max_height}")
    scale = min(1.0, max_width / width, max_height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_to_fit(frame: Frame, max_width: int, max_height: int) -> Frame:
    height, width = frame.shape[:2]
    new_width, new_height = fit_size(width, height, max_width, max_height)
    if (new_width, new_height) == (width, height):
        return frame
    # INTER_AREA: the right filter for shrinking (no aliasing).
    resized = cv2.resize(frame, (new_width, new_height), interpolation=cv2.INTER_AREA)
    return np.asarray(resized, dtype=np.uint8)


def encode_jpeg(frame: Frame, quality: int) -> bytes:
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a frame of shape {frame.shape} as JPEG")
    return bytes(buffer.tobytes())


def decode_jpeg(data: bytes) -> Frame:
    """JPEG bytes -> BGR frame; raises CorruptJpegError for anything else.

    libjpeg decodes a truncated file without complaint (the missing rows come
    out grey), so the end-of-image marker is checked first: a frame cut short
    on the wire is rejected, not passed on half grey.
    """
    if len(data) < 4 or not data.startswith(_JPEG_START):
        raise CorruptJpegError(f"not a JPEG: {len(data)} bytes starting {data[:4].hex()}")
    if _JPEG_END not in data[-16:]:
        raise CorruptJpegError(f"truncated JPEG: no end-of-image marker in {len(data)} bytes")
    frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise CorruptJpegError(f"undecodable JPEG of {len(data)} bytes")
    return np.asarray(frame, dtype=np.uint8)
