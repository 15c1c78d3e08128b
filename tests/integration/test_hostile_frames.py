"""A frame whose JPEG header claims more pixels than a camera sends is refused
from its header (dead letter), never decoded: the detector stays online with
its memory bounded (issue 13.6: 691 bytes claiming 16000x16000 took 2.2 s of
CPU and grew the detector from 109 MB to 1574 MB)."""

from __future__ import annotations

import time

import numpy as np

from services.media.jpeg_encode import encode_jpeg
from tests.harness.probe import MakeProbe
from tests.harness.stage_process import StartStage
from tests.integration.video_helpers import (
    frame_properties,
    rss_mib,
    vtest_jpegs,
    watched_detector,
)


def jpeg_bomb(width: int, height: int) -> bytes:
    """A valid 8x8 JPEG whose SOF0 header claims `width` x `height`."""
    jpeg = encode_jpeg(np.full((8, 8, 3), 128, np.uint8), 50)
    sof = jpeg.index(b"\xff\xc0")  # FF C0, length, precision, height, width
    return jpeg[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[sof + 9 :]


def test_a_jpeg_claiming_16000x16000_is_a_dead_letter_and_memory_stays_bounded(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer, detector = watched_detector(stage, probe, root)
    camera = probe("camera-capture")
    topic = f"{root}/camera/bomb/frame"
    ((jpeg, width, height),) = vtest_jpegs(1, max_width=320)
    # Warm up the model on a real frame, so the reading below is the resting RSS.
    camera.publish(topic, jpeg, qos=0, user_properties=frame_properties(0, width, height))
    observer.wait_for(lambda m: m.topic == f"{root}/detections/bomb/frame")
    rss_before = rss_mib(detector.pid)
    bomb = jpeg_bomb(16000, 16000)
    bombs = 3
    for seq in range(1, bombs + 1):
        camera.publish(topic, bomb, qos=0, user_properties=frame_properties(seq, 16000, 16000))
        time.sleep(0.3)  # one at a time: latest-wins would merge them
    letters = observer.wait_for(
        lambda m: m.topic == f"{root}/deadletter/object-detector", count=bombs
    )
    rss_after = rss_mib(detector.pid)
    reasons = [m.json()["reason"] for m in letters]
    print(f"{len(bomb)} bytes; RSS {rss_before:.0f} -> {rss_after:.0f} MiB; {reasons[0]}")
    assert all("16000x16000" in reason for reason in reasons)
    assert rss_after - rss_before < 30
    camera.publish(topic, jpeg, qos=0, user_properties=frame_properties(bombs + 1, width, height))
    found = observer.wait_for(
        lambda m: m.topic == f"{root}/detections/bomb/frame" and m.json()["seq"] == bombs + 1
    )
    assert found
    assert detector.poll() is None
