"""A JPEG's dimensions come from its header, before any pixel is decoded: a
few hundred bytes claiming 16000x16000 are refused, not decoded (issue 13.6)."""

from __future__ import annotations

import contextlib
from typing import SupportsIndex

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.media.jpeg_decode import decode_jpeg
from services.media.jpeg_encode import encode_jpeg
from services.media.jpeg_frame import (
    MAX_FRAME_HEIGHT,
    MAX_FRAME_WIDTH,
    CorruptJpegError,
    OversizeJpegError,
    check_jpeg_size,
    jpeg_dimensions,
)


def tiny_jpeg() -> bytes:
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[2:6, 2:6] = 200
    return encode_jpeg(frame, 50)


def with_dimensions(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its SOF0 header patched to claim `width` x `height`."""
    sof = jpeg.index(b"\xff\xc0")
    # FF C0, length (2), precision (1), height (2), width (2)
    return jpeg[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[sof + 9 :]


class StrictBytes(bytes):
    """bytes whose every single-byte read must lie inside the buffer (a slice
    is clamped by Python itself; an index past the end would be an overread
    the parser took for data)."""

    def __getitem__(self, key: SupportsIndex | slice) -> object:  # type: ignore[override]
        if isinstance(key, slice):
            return bytes(self)[key]
        index = int(key)
        assert 0 <= index < len(self), f"read at {index} of {len(self)} bytes"
        return bytes(self)[index]


def test_dimensions_come_from_the_header() -> None:
    jpeg = encode_jpeg(np.zeros((48, 64, 3), np.uint8), 80)
    assert jpeg_dimensions(jpeg) == (64, 48)
    assert check_jpeg_size(jpeg) == (64, 48)


def test_a_header_claiming_16000x16000_is_refused_before_decoding() -> None:
    bomb = with_dimensions(tiny_jpeg(), 16000, 16000)
    assert len(bomb) < 1000
    assert jpeg_dimensions(bomb) == (16000, 16000)
    with pytest.raises(OversizeJpegError, match="16000x16000"):
        check_jpeg_size(bomb)
    # decode_jpeg refuses it from the header (on the old code it decoded
    # 16000x16000x3 bytes, 768 MB, from 691).
    with pytest.raises(OversizeJpegError):
        decode_jpeg(bomb)


def test_the_largest_frame_a_camera_sends_passes() -> None:
    largest = with_dimensions(tiny_jpeg(), MAX_FRAME_WIDTH, MAX_FRAME_HEIGHT)
    assert check_jpeg_size(largest) == (MAX_FRAME_WIDTH, MAX_FRAME_HEIGHT)
    with pytest.raises(OversizeJpegError):
        check_jpeg_size(with_dimensions(tiny_jpeg(), MAX_FRAME_WIDTH + 1, 16))


@pytest.mark.parametrize(
    "bad",
    [b"", b"\xff\xd8", b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00", b"\xff\xd8\xff\xda\x00\x08"],
)
def test_no_header_is_a_corrupt_jpeg(bad: bytes) -> None:
    with pytest.raises(CorruptJpegError):
        jpeg_dimensions(StrictBytes(bad))


def test_a_run_of_fill_bytes_is_refused_without_scanning_it() -> None:
    with pytest.raises(CorruptJpegError):
        jpeg_dimensions(StrictBytes(b"\xff\xd8" + b"\xff" * 4_000_000))


@given(st.binary(max_size=512))
def test_random_bytes_give_dimensions_or_the_modules_error(data: bytes) -> None:
    for candidate in (data, b"\xff\xd8" + data, b"\xff\xd8\xff" + data):
        try:
            width, height = jpeg_dimensions(StrictBytes(candidate))
        except CorruptJpegError:
            continue
        assert 1 <= width <= 65535 and 1 <= height <= 65535


@given(
    st.integers(min_value=1, max_value=65535),
    st.integers(min_value=1, max_value=65535),
    st.integers(min_value=0, max_value=200),
)
def test_patched_headers_read_back_and_truncations_never_overread(
    width: int, height: int, cut: int
) -> None:
    jpeg = with_dimensions(tiny_jpeg(), width, height)
    assert jpeg_dimensions(StrictBytes(jpeg)) == (width, height)
    with contextlib.suppress(CorruptJpegError):
        jpeg_dimensions(StrictBytes(jpeg[:cut]))
