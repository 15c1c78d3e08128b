"""Frames from OpenCV: a video file (looping), an RTSP/HTTP URL or a V4L2 device.

Blocking code: `FrameSource.next_frame` is called off the event loop. A live
source is read by its own thread that keeps only the newest frame, because a
camera's driver buffers frames and a slow reader would otherwise get old
ones; a file is read on demand, so its pace is the caller's.

Failures: `check_source` refuses at start-up what can never work (a missing,
empty or undecodable file, a device that is not there, a URL that does not
parse); a source that fails later raises `SourceError` from `next_frame`,
and the stage opens it again with backoff. A network camera is not opened at
start-up: one that is not there yet is a later failure, not a bad setting.
OpenCV's FFmpeg open and read of a URL are bounded (`NETWORK_TIMEOUT_MS`)
instead of waiting on a dead host for as long as FFmpeg likes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]
FALLBACK_FILE_FPS = 10.0
NETWORK_TIMEOUT_MS = 5000  # OpenCV/FFmpeg open and read of a URL
LIVE_FRAME_WAIT_S = 1.0  # how long next_frame waits for a live frame
URL_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https"})


class SourceError(RuntimeError):
    """The source cannot be opened or read."""


def is_live(source: str) -> bool:
    return source.isdigit() or "://" in source


def open_capture(source: str) -> cv2.VideoCapture:
    if source.isdigit():
        capture = cv2.VideoCapture(int(source))
    elif "://" in source:
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS]
        timeouts += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS]
        capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, timeouts)
    else:
        capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"cannot open video source {source!r}")
    return capture


def check_source(source: str) -> None:
    """Blocking: raise SourceError, saying why, for a source that cannot work
    at all: a file that is missing, empty or has no decodable frame, a device
    that does not open, a URL without a known scheme or a host."""
    if "://" in source:
        try:
            url = urlsplit(source)
            url.port  # noqa: B018 - parsing it raises ValueError for a bad port
        except ValueError as error:
            raise SourceError(f"not a valid URL {source!r}: {error}") from None
        if url.scheme.lower() not in URL_SCHEMES:
            schemes = ", ".join(sorted(URL_SCHEMES))
            raise SourceError(f"URL scheme of {source!r} is not one of {schemes}")
        if not url.hostname:
            raise SourceError(f"URL {source!r} names no host")
        return
    if source.isdigit():
        open_capture(source).release()
        return
    path = Path(source)
    if not path.is_file():
        raise SourceError(f"no video file at {source!r}" + (" (a folder)" if path.exists() else ""))
    if path.stat().st_size == 0:
        raise SourceError(f"video file {source!r} is empty")
    capture = open_capture(source)
    try:
        ok, _ = capture.read()
    finally:
        capture.release()
    if not ok:
        raise SourceError(f"no decodable frame in {source!r}")


@dataclass(frozen=True)
class Captured:
    frame: Frame
    index: int  # frame number in the file, or count of frames read from a live source


class FileSource:
    """A video file. `realtime`: it plays at its own frame rate whatever the
    caller's pace (frames in between are skipped, as a camera would);
    otherwise each call returns the next frame."""

    def __init__(self, path: str, *, loop: bool, realtime: bool) -> None:
        self._path = path
        self._loop = loop
        self._realtime = realtime
        self._capture = open_capture(path)
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.native_fps = fps if fps > 0 else FALLBACK_FILE_FPS
        self._position = 0  # index of the next frame `read` returns
        self._started: float | None = None
        self._lap_offset = 0  # frames of the file played in earlier laps

    def next_frame(self) -> Captured | None:
        """The frame due now; None when a non-looping file has ended."""
        now = time.monotonic()
        if self._started is None:
            self._started = now
        if self._realtime:
            due = int((now - self._started) * self.native_fps) - self._lap_offset
            while self._position < due:
                if not self._capture.grab():
                    break
                self._position += 1
        ok, frame = self._capture.read()
        if not ok:
            if self._position == 0:
                raise SourceError(f"no frame could be read from {self._path!r}")
            if not self._loop:
                return None
            self._restart()  # SourceError if the file is gone
            ok, frame = self._capture.read()
            if not ok:
                raise SourceError(f"no frame after starting {self._path!r} over")
        captured = Captured(np.asarray(frame, dtype=np.uint8), self._position)
        self._position += 1
        return captured

    def _restart(self) -> None:
        self._capture.release()
        self._capture = open_capture(self._path)
        self._lap_offset += self._position
        self._position = 0

    def close(self) -> None:
        self._capture.release()


class LiveSource:
    """An RTSP/HTTP stream or a V4L2 device, opened and read continuously by
    a thread. When the open or a read fails the thread ends and `next_frame`
    raises SourceError: the caller opens a new LiveSource after its backoff."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._condition = threading.Condition()
        self._latest: Captured | None = None
        self._failure: str | None = None
        self._returned = -1
        self._count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_until_failure, name="camera-reader")
        self._thread.daemon = True  # a read blocked in FFmpeg never holds the process
        self._thread.start()

    def _read_until_failure(self) -> None:
        try:
            capture = open_capture(self._source)
        except SourceError as error:
            self._fail(str(error))
            return
        try:
            while not self._stop.is_set():
                ok, frame = capture.read()
                if not ok:
                    self._fail(f"read from {self._source!r} failed")
                    return
                with self._condition:
                    self._latest = Captured(np.asarray(frame, dtype=np.uint8), self._count)
                    self._count += 1
                    self._condition.notify_all()
        finally:
            capture.release()

    def _fail(self, reason: str) -> None:
        with self._condition:
            self._failure = reason
            self._condition.notify_all()

    def next_frame(self, timeout_s: float = LIVE_FRAME_WAIT_S) -> Captured | None:
        """The newest frame not returned before; None if none came in time.
        Raises SourceError once the source has failed."""
        with self._condition:
            self._condition.wait_for(
                lambda: self._fresh() or self._failure is not None or self._stop.is_set(),
                timeout=timeout_s,
            )
            if self._fresh() and self._latest is not None:
                self._returned = self._latest.index
                return self._latest
            if self._failure is not None:
                raise SourceError(self._failure)
            return None

    def _fresh(self) -> bool:
        return self._latest is not None and self._latest.index > self._returned

    def close(self) -> None:
        self._stop.set()
        with self._condition:
            self._condition.notify_all()
        self._thread.join(timeout=LIVE_FRAME_WAIT_S)
