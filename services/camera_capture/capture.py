"""Frames from OpenCV: a video file (looping), an RTSP/HTTP URL or a V4L2 device.

Blocking code: `FrameSource.next_frame` is called off the event loop. A live
source is read by its own thread that keeps only the newest frame, because a
camera's driver buffers frames and a slow reader would otherwise get old
ones; a file is read on demand, so its pace is the caller's.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]
REOPEN_DELAY_S = 2.0
FALLBACK_FILE_FPS = 10.0


class SourceError(RuntimeError):
    """The source cannot be opened or read."""


def is_live(source: str) -> bool:
    return source.isdigit() or "://" in source


def open_capture(source: str) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"cannot open video source {source!r}")
    return capture


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
            if not self._loop or self._position == 0:
                return None
            self._restart()
            ok, frame = self._capture.read()
            if not ok:
                return None
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
    """An RTSP/HTTP stream or a V4L2 device, read continuously by a thread."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._capture = open_capture(source)  # a wrong URL fails at start-up
        self._condition = threading.Condition()
        self._latest: Captured | None = None
        self._returned = -1
        self._count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_forever, name="camera-reader")
        self._thread.daemon = True
        self._thread.start()

    def _read_forever(self) -> None:
        capture: cv2.VideoCapture | None = self._capture
        while not self._stop.is_set():
            if capture is None:
                try:
                    capture = open_capture(self._source)
                except SourceError as error:
                    log.warning("camera unavailable", extra={"error": str(error)})
                    self._stop.wait(REOPEN_DELAY_S)
                    continue
            ok, frame = capture.read()
            if not ok:
                log.warning("camera read failed; reopening", extra={"source": self._source})
                capture.release()
                capture = None
                continue
            with self._condition:
                self._latest = Captured(np.asarray(frame, dtype=np.uint8), self._count)
                self._count += 1
                self._condition.notify_all()
        if capture is not None:
            capture.release()

    def next_frame(self, timeout_s: float = 5.0) -> Captured | None:
        """The newest frame not returned before; None if none came in time."""
        with self._condition:
            fresh = self._condition.wait_for(
                lambda: self._latest is not None and self._latest.index > self._returned,
                timeout=timeout_s,
            )
            if not fresh or self._latest is None:
                return None
            self._returned = self._latest.index
            return self._latest

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=REOPEN_DELAY_S + 1)
