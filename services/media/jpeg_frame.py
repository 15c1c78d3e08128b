"""The JPEG frame on `camera/<cam>/frame`: its metadata as MQTT 5 user properties,
the checks of its bytes that need no pixel decoded, and the frame size knob that
sets a camera's upload cost.

`MAX_FRAME_WIDTH` x `MAX_FRAME_HEIGHT` is the largest frame camera-capture
sends (its size knobs stop there); a receiver reads a JPEG's dimensions from
its header (`jpeg_dimensions`, no pixels decoded) and refuses anything larger
before decoding, so a few hundred bytes cannot claim gigabytes of pixels.

The pixels themselves are in two modules of their own, one per image library,
so that no stage loads a library it does not use: `jpeg_encode` (OpenCV, BGR:
camera-capture) and `jpeg_decode` (simplejpeg, RGB: object-detector)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas.envelope import MAX_INT, MAX_TIMESTAMP
from schemas.video import FRAME_PROPERTIES, MAX_SIDE

# H x W x 3 pixels, in the order of the library that made them: BGR in
# camera-capture (OpenCV), RGB in object-detector (simplejpeg, `jpeg_decode.RgbFrame`).
Frame = npt.NDArray[np.uint8]

MAX_FRAME_WIDTH = 7680
MAX_FRAME_HEIGHT = 4320

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
# Start-of-frame markers carry the dimensions: SOF0-3, 5-7, 9-11, 13-15
# (0xC4 is DHT, 0xC8 reserved, 0xCC DAC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_START_OF_SCAN = 0xDA
_END_OF_IMAGE = 0xD9
# Markers without a length field: TEM and RST0-7 (SOI/EOI are handled apart).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# A real header has a dozen segments before its SOF; this bounds the scan
# (at most 64 segments of at most 64 KiB each, and their fill bytes).
_MAX_SEGMENTS = 64
_MAX_FILL_BYTES = 16


class CorruptJpegError(ValueError):
    """The bytes are not a complete JPEG image."""


class OversizeJpegError(CorruptJpegError):
    """The JPEG's header claims more pixels than a frame may have."""


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


def jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame header, without decoding.

    Walks the marker segments from the start (at most `_MAX_SEGMENTS`, each
    skipped by its length field, never reading past `data`: about a kB read at
    most, whatever the size of `data`); raises
    CorruptJpegError when there is no well-formed SOF before the first scan.
    """
    if not data.startswith(_JPEG_START):
        raise CorruptJpegError(f"not a JPEG: {len(data)} bytes starting {data[:4].hex()}")
    position = len(_JPEG_START)
    for _ in range(_MAX_SEGMENTS):
        if position >= len(data) or data[position] != 0xFF:
            break
        # 0xFF fill bytes may precede a marker; more than a few are not a camera's.
        fill_end = min(len(data), position + _MAX_FILL_BYTES)
        while position < fill_end and data[position] == 0xFF:
            position += 1
        if position >= fill_end:
            break
        marker = data[position]
        position += 1
        if marker in _STANDALONE:
            continue
        if marker in (_START_OF_SCAN, _END_OF_IMAGE) or position + 2 > len(data):
            break
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2 or position + length > len(data):
            break
        if marker in _SOF_MARKERS:
            if length < 8:  # precision (1), height (2), width (2), components (1) + length
                break
            height = int.from_bytes(data[position + 3 : position + 5], "big")
            width = int.from_bytes(data[position + 5 : position + 7], "big")
            if width == 0 or height == 0:
                raise CorruptJpegError(f"JPEG header claims a {width}x{height} image")
            return width, height
        position += length
    raise CorruptJpegError(f"no frame header in the first segments of {len(data)} JPEG bytes")


def check_jpeg_size(
    data: bytes, max_width: int = MAX_FRAME_WIDTH, max_height: int = MAX_FRAME_HEIGHT
) -> tuple[int, int]:
    """The JPEG's (width, height) from its header; OversizeJpegError when
    larger than a frame may be, CorruptJpegError when there is no header."""
    width, height = jpeg_dimensions(data)
    if width > max_width or height > max_height:
        raise OversizeJpegError(
            f"JPEG header claims {width}x{height}, over the {max_width}x{max_height} "
            "frame limit: not decoded"
        )
    return width, height


def check_jpeg_complete(data: bytes) -> None:
    """CorruptJpegError unless `data` starts like a JPEG and ends with its
    end-of-image marker.

    libjpeg decodes a truncated file without complaint (the missing rows come
    out grey), so a frame cut short on the wire is refused here, before a
    decoder sees it, not passed on half grey. The marker may be followed by a
    little padding, hence the look at the last bytes rather than the very last two.
    """
    if len(data) < 4 or not data.startswith(_JPEG_START):
        raise CorruptJpegError(f"not a JPEG: {len(data)} bytes starting {data[:4].hex()}")
    if _JPEG_END not in data[-16:]:
        raise CorruptJpegError(f"truncated JPEG: no end-of-image marker in {len(data)} bytes")
