"""The JPEG on `camera/<cam>/frame` -> RGB pixels, and a crop's pixels -> a
snapshot JPEG: object-detector's half of the frame's pixels (the camera's
half is `jpeg_encode`, with OpenCV).

libjpeg-turbo through simplejpeg (one call each way, the GIL released
meanwhile) rather than OpenCV, which would add about 16 MB to every replica,
or Pillow, whose open/save path runs Python for every marker and option:
on the bench's 384x288 frames simplejpeg decodes in 330 us (Pillow 547,
OpenCV 470) and encodes a person's crop in 54 us (Pillow 143, OpenCV 64),
which with seven people a frame is what keeps the detector at its model's
speed. Pixels come out RGB, the order the models take: no channel swap
anywhere on the detector's path.

Every check that needs no pixel comes first (`jpeg_frame`): the JPEG's start
and end-of-image markers, and the header's dimensions against the frame limit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import Image

from services.media.jpeg_frame import CorruptJpegError, check_jpeg_complete, check_jpeg_size

RgbFrame = npt.NDArray[np.uint8]  # H x W x 3, RGB (an OpenCV frame would be BGR)

# What simplejpeg raises for bytes libjpeg-turbo cannot read (ValueError),
# or for a JPEG it cannot turn into RGB (RuntimeError, e.g. CMYK).
_UNREADABLE = (ValueError, RuntimeError)


def decode_jpeg(data: bytes) -> RgbFrame:
    """JPEG bytes -> an H x W x 3 RGB array, every pixel decoded;
    CorruptJpegError for anything else (OversizeJpegError: a header over the
    frame limit, refused before a pixel is decoded).

    Always at full size, although libjpeg could decode at 1/2 to 1/8 scale
    for a model's small input: a snapshot is cropped from the full frame, and
    where it would have applied (snapshots off, frames from 1280x720) it saved
    under 1 ms a frame and found 4 % fewer people.
    """
    check_jpeg_complete(data)
    width, height = check_jpeg_size(data)
    try:
        # strict: libjpeg's recoverable errors (a damaged scan) raise too.
        frame = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except _UNREADABLE as error:
        raise CorruptJpegError(f"undecodable JPEG of {len(data)} bytes: {error}") from None
    if frame.shape != (height, width, 3):
        raise CorruptJpegError(f"JPEG header says {width}x{height}, it decoded to {frame.shape}")
    return np.asarray(frame, dtype=np.uint8)


def decode_jpeg_image(data: bytes) -> Image.Image:
    """JPEG bytes -> an RGB Pillow image, as `decode_jpeg`."""
    return Image.fromarray(decode_jpeg(data))


def encode_rgb_jpeg(frame: RgbFrame, quality: int) -> bytes:
    """An RGB array as a JPEG (libjpeg-turbo, the GIL released meanwhile)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    pixels = np.ascontiguousarray(frame, dtype=np.uint8)
    return bytes(simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="RGB"))


def rgb_image(frame: RgbFrame | Image.Image) -> Image.Image:
    """An RGB frame as a Pillow image: an image as it is, an array's pixels copied."""
    if isinstance(frame, Image.Image):
        if frame.mode != "RGB":
            raise ValueError(f"expected an RGB image, got mode {frame.mode}")
        return frame
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB frame, got shape {frame.shape}")
    return Image.fromarray(np.asarray(frame, dtype=np.uint8))


def frame_size(frame: RgbFrame | Image.Image) -> tuple[int, int]:
    """(width, height) of an RGB frame, image or array."""
    if isinstance(frame, Image.Image):
        return frame.size
    height, width = frame.shape[:2]
    return width, height
