"""A frame's JPEG within a byte limit: quality first, then size, lowered
until it fits, and what fitted remembered for the next frame.

The limit is what the broker takes in one packet (the frame topic's
`max_bytes`, the broker's Maximum Packet Size): a camera at 3840x2160 and
quality 100 makes JPEGs of 5 to 16 MiB, which the broker would answer by
dropping the connection. Lowering quality costs least detail, so it goes
first, down to `MIN_QUALITY`; below that the frame shrinks. Each frame starts
from what fitted the last one (one encode per frame once settled) and steps
back up when a frame leaves more than half the limit unused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.media.jpeg_encode import encode_jpeg, resize_to_fit
from services.media.jpeg_frame import Frame

MIN_QUALITY = 30
QUALITY_STEP = 10
MAX_ENCODES = 12  # per frame; a 7680x4320 frame of noise needs 9
HEADROOM = 0.5  # a JPEG under this share of the limit lets the next frame step up


class FrameTooLarge(ValueError):
    """No quality or size within `MAX_ENCODES` attempts fits the limit."""


@dataclass(frozen=True)
class FittedJpeg:
    jpeg: bytes
    width: int
    height: int
    quality: int
    lowered: bool  # quality or size below what the knobs asked for


class JpegFitter:
    def __init__(self) -> None:
        self.quality_cap: int | None = None  # None: the knob's quality
        self.scale = 1.0  # of the knob-sized frame

    def encode(self, frame: Frame, quality: int, max_bytes: int) -> FittedJpeg:
        """`frame` as a JPEG of at most `max_bytes`, at `quality` if it fits."""
        q = min(quality, self.quality_cap or quality)
        scale = self.scale
        height, width = frame.shape[:2]
        for _ in range(MAX_ENCODES):
            image = frame
            if scale < 1.0:
                image = resize_to_fit(
                    frame, max(1, round(width * scale)), max(1, round(height * scale))
                )
            jpeg = encode_jpeg(image, q)
            if len(jpeg) <= max_bytes:
                break
            if q > MIN_QUALITY:
                q = max(MIN_QUALITY, q - QUALITY_STEP)
            else:
                # Bytes grow about with the pixel count: shrink both sides by
                # the square root of what is over, a little more for margin.
                scale *= min(0.9, max(0.5, 0.95 * math.sqrt(max_bytes / len(jpeg))))
        else:
            raise FrameTooLarge(
                f"a {width}x{height} frame does not fit {max_bytes} bytes "
                f"at quality {q} and scale {scale:.2f}"
            )
        lowered = q < quality or scale < 1.0
        self.quality_cap = q if q < quality else None
        self.scale = scale
        if lowered and len(jpeg) < HEADROOM * max_bytes:
            if scale < 1.0:
                self.scale = min(1.0, scale / 0.8)
            else:
                self.quality_cap = min(quality, q + QUALITY_STEP)
        fitted_height, fitted_width = image.shape[:2]
        return FittedJpeg(jpeg, fitted_width, fitted_height, q, lowered)
