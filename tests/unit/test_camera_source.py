"""camera-capture's sources (issue 13.4): what can never work is refused at
start-up with the reason; a source that fails later raises SourceError (the
stage retries it) instead of ending like a finished file or hanging."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.camera_capture.capture import FileSource, LiveSource, SourceError, check_source
from tests.harness.broker import free_port as closed_port
from tests.harness.videos import write_video


def small_video(path: Path, frames: int = 4) -> Path:
    return write_video(path, (np.full((48, 64, 3), 40 * i, np.uint8) for i in range(frames)))


def test_a_good_file_and_a_well_formed_url_pass(tmp_path: Path) -> None:
    check_source(str(small_video(tmp_path / "v.avi")))
    check_source(f"rtsp://127.0.0.1:{closed_port()}/stream")  # not opened at start-up
    check_source("http://camera.local/mjpg")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.avi", None, "no video file"),
        ("empty.avi", b"", "is empty"),
        ("junk.avi", bytes(range(256)) * 64, "cannot open|no decodable frame"),
    ],
)
def test_files_that_cannot_work_are_refused_saying_why(
    tmp_path: Path, name: str, content: bytes | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=reason):
        check_source(str(path))


def test_a_folder_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="folder"):
        check_source(str(tmp_path))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("rtsp://", "no host"),
        ("rtsp://camera:port/x", "not a valid URL"),
        ("ftp://camera/x", "scheme"),
        ("rtsp://[::1/x", "not a valid URL"),
    ],
)
def test_urls_that_do_not_parse_are_refused(url: str, reason: str) -> None:
    with pytest.raises(SourceError, match=reason):
        check_source(url)


def test_a_looping_file_that_goes_away_raises_instead_of_ending(tmp_path: Path) -> None:
    path = small_video(tmp_path / "v.avi")
    source = FileSource(str(path), loop=True, realtime=False)
    try:
        assert source.next_frame() is not None
        path.unlink()
        with pytest.raises(SourceError):
            for _ in range(10):  # the open file still plays to its end
                source.next_frame()
    finally:
        source.close()


def test_a_file_without_loop_ends_with_none(tmp_path: Path) -> None:
    source = FileSource(str(small_video(tmp_path / "v.avi", 2)), loop=False, realtime=False)
    try:
        frames = [source.next_frame() for _ in range(3)]
    finally:
        source.close()
    assert frames[0] is not None and frames[1] is not None and frames[2] is None


def test_a_stream_that_cannot_be_opened_raises_from_next_frame() -> None:
    source = LiveSource(f"rtsp://127.0.0.1:{closed_port()}/stream")
    try:
        with pytest.raises(SourceError, match="cannot open"):
            for _ in range(30):  # each call waits at most a second
                source.next_frame()
    finally:
        source.close()
