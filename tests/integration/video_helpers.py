"""Frames, timing and memory readings for the video pipeline tests."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.media.jpeg_encode import encode_jpeg, resize_to_fit
from tests.harness.assets import VIDEO as VIDEO  # re-exported: the video tests import it here
from tests.harness.probe import MakeProbe, Probe, Seen
from tests.harness.stage_process import StageProcess, StartStage


def vtest_jpegs(count: int, max_width: int, quality: int = 70) -> list[tuple[bytes, int, int]]:
    """The first `count` frames of vtest.avi as (JPEG, width, height)."""
    if not VIDEO.is_file():
        pytest.fail(f"missing test asset {VIDEO}: run `make assets`")
    capture = cv2.VideoCapture(str(VIDEO))
    frames: list[tuple[bytes, int, int]] = []
    try:
        while len(frames) < count:
            ok, frame = capture.read()
            assert ok, f"vtest.avi ended after {len(frames)} frames"
            small = resize_to_fit(np.asarray(frame, np.uint8), max_width, max_width)
            frames.append((encode_jpeg(small, quality), small.shape[1], small.shape[0]))
    finally:
        capture.release()
    return frames


def frame_properties(seq: int, width: int, height: int, ts: float | None = None) -> dict[str, str]:
    return {
        "seq": str(seq),
        "capture_ts": f"{ts if ts is not None else time.time():.6f}",
        "width": str(width),
        "height": str(height),
    }


def offer_frames(
    camera: Probe,
    topic: str,
    frames: Sequence[tuple[bytes, int, int]],
    fps: float,
    seconds: float,
    first_seq: int = 0,
) -> int:
    """Publish frames (cycling through `frames`) at `fps` for `seconds`, as a
    camera would; returns the next free seq."""
    seq = first_seq
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        jpeg, width, height = frames[seq % len(frames)]
        camera.publish(topic, jpeg, qos=0, user_properties=frame_properties(seq, width, height))
        seq += 1
        delay = start + (seq - first_seq) / fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return seq


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def latency_s(message: Seen) -> float:
    """Capture (camera clock) to the detections' arrival at the probe."""
    return message.at - float(message.json()["capture_ts"])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_online(observer: Probe, root: str, stage: str, count: int = 1) -> None:
    topic = f"{root}/status/{stage}"
    observer.wait_for(
        lambda m: m.topic == topic and m.payload == b"online" and not m.retained,
        count=count,
        timeout_s=30,
    )


def watched_detector(stage: StartStage, probe: MakeProbe, root: str) -> tuple[Probe, StageProcess]:
    """An operator watching the whole tree, and one detector (one thread) online."""
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=1)
    detector = stage("object-detector", EDGEGW_THREADS="1")
    wait_online(observer, root, "object-detector")
    return observer, detector
