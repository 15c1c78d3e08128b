"""Snapshot JPEGs made small enough for a list of alerts (Pillow)."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

MAX_SOURCE_PIXELS = 4096 * 4096  # checked from the header, before decoding


class NotAnImage(ValueError):
    pass


def thumbnail(jpeg: bytes, size_px: int, quality: int = 70) -> bytes:
    """A JPEG at most `size_px` on its longer side; raises NotAnImage."""
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            if image.format != "JPEG":
                raise NotAnImage(f"a snapshot must be a JPEG, not {image.format}")
            width, height = image.size
            if width * height > MAX_SOURCE_PIXELS:
                raise NotAnImage(f"{width}x{height} is larger than {MAX_SOURCE_PIXELS} pixels")
            image.draft("RGB", (size_px, size_px))  # decode at a reduced scale
            small = image.convert("RGB")
            small.thumbnail((size_px, size_px))
            out = io.BytesIO()
            small.save(out, "JPEG", quality=quality)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise NotAnImage(f"not a readable JPEG: {error}") from None
