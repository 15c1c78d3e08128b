"""camera-capture with a bad source (issue 13.4): a source that can never work
exits 2 at start-up naming EDGEGW_SOURCE, without a traceback; a source that
fails later (a dead RTSP URL, a file that goes away) keeps the stage up and
online with health `degraded`, is retried with backoff and recovers when it
comes back, and SIGTERM still ends the stage with 0 within twice its grace."""

from __future__ import annotations

import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.harness.broker import free_port as closed_port
from tests.harness.probe import MakeProbe, Probe, Seen
from tests.harness.stage_process import StageProcess, StartStage
from tests.harness.videos import write_video
from tests.integration.video_helpers import wait_online

GRACE_S = 1.0
QUICK = {
    "EDGEGW_SHUTDOWN_GRACE_S": str(GRACE_S),
    "EDGEGW_HEALTH_INTERVAL_S": "0.5",
    "EDGEGW_PUBLISH_LEVELS": "false",
    "EDGEGW_FPS": "10",
    "EDGEGW_MAX_WIDTH": "160",
}


def short_video(path: Path, frames: int = 10) -> Path:
    """One second of video at 10 fps."""
    return write_video(path, (np.full((120, 160, 3), 20 * i, np.uint8) for i in range(frames)))


class MjpegCamera:
    """A network camera on loopback: an endless multipart MJPEG stream over
    HTTP at 10 fps (as many IP cameras serve), which can be switched off
    (open streams end, new connections are refused) and on again."""

    def __init__(self) -> None:
        self._jpeg = bytes(cv2.imencode(".jpg", np.full((120, 160, 3), 90, np.uint8))[1])
        self._on = threading.Event()
        self.port = closed_port()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> None:
        camera = self

        class Stream(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                try:
                    while camera._on.is_set():
                        jpeg = camera._jpeg
                        self.wfile.write(part % len(jpeg) + jpeg + b"\r\n")
                        time.sleep(0.1)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._on.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Stream)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._on.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def wait_exit(process: StageProcess, timeout_s: float) -> int:
    try:
        return process.wait(timeout_s)
    except Exception:
        process.kill()
        raise


@pytest.mark.parametrize("case", ["missing", "empty", "undecodable", "bad-url"])
def test_a_source_that_can_never_work_exits_2_naming_edgegw_source(
    stage: StartStage, tmp_path: Path, case: str
) -> None:
    path = tmp_path / "camera.avi"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "undecodable":
        path.write_bytes(bytes(range(256)) * 64)
    source = "rtsp://camera:port/stream" if case == "bad-url" else str(path)
    camera = stage("camera-capture", EDGEGW_SOURCE=source, **QUICK)
    code = wait_exit(camera, 30)
    output = camera.output()
    assert code == 2, output
    assert "EDGEGW_SOURCE" in output
    assert "Traceback" not in output


def health_of(observer: Probe, root: str, state: str) -> list[Seen]:
    topic = f"{root}/health/camera-capture"
    return observer.wait_for(lambda m: m.topic == topic and m.json()["state"] == state, 1, 20)


def stop_within_twice_grace(camera: StageProcess) -> None:
    camera.terminate()
    started = time.monotonic()
    code = wait_exit(camera, 2 * GRACE_S + 3)  # plus start-up slack of a loaded machine
    print(f"stopped in {time.monotonic() - started:.2f} s")
    assert code == 0, camera.output()


def retained_status(probe: MakeProbe, root: str) -> bytes:
    late = probe("operator")
    late.subscribe(f"{root}/status/camera-capture")
    return late.wait_for(lambda m: m.retained)[0].payload


def test_a_dead_rtsp_url_stays_online_degraded_and_stops_on_sigterm(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=1)
    url = f"rtsp://127.0.0.1:{closed_port()}/stream"
    camera = stage("camera-capture", EDGEGW_SOURCE=url, **QUICK)
    wait_online(observer, root, "camera-capture")
    degraded = health_of(observer, root, "degraded")[0].json()
    assert "camera source unavailable" in degraded["detail"]
    time.sleep(3)  # a few retries
    assert camera.poll() is None, camera.output()
    assert retained_status(probe, root) == b"online"
    metrics = observer.wait_for(lambda m: m.topic == f"{root}/metrics/camera-capture")[-1]
    assert metrics.json()["counters"]["source_failures"] >= 2
    stop_within_twice_grace(camera)
    assert retained_status(probe, root) == b"offline"


@pytest.mark.parametrize("how", ["removed", "truncated"])
def test_a_file_that_goes_away_is_retried_and_recovers(
    stage: StartStage, probe: MakeProbe, root: str, tmp_path: Path, how: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=1)
    frames = probe("object-detector")
    frames.subscribe(f"{root}/camera/+/frame", qos=0)
    video = short_video(tmp_path / "camera.avi")
    kept = shutil.copy(video, tmp_path / "kept.avi")
    camera = stage("camera-capture", EDGEGW_SOURCE=str(video), EDGEGW_FILE_PACING="frames", **QUICK)
    wait_online(observer, root, "camera-capture")
    frames.wait_for(lambda m: True, count=5, timeout_s=20)
    if how == "removed":
        video.unlink()  # the open file plays to its end, then cannot be opened again
    else:
        video.write_bytes(b"")  # the open file too ends short
    health_of(observer, root, "degraded")
    assert camera.poll() is None, camera.output()
    frames.clear()
    shutil.copy(kept, video)
    frames.wait_for(lambda m: True, count=5, timeout_s=40)
    observer.clear()
    health_of(observer, root, "ok")
    metrics = observer.wait_for(lambda m: m.topic == f"{root}/metrics/camera-capture")[-1]
    assert metrics.json()["counters"]["source_recoveries"] >= 1
    statuses = [m.payload for m in observer.received() if m.topic.endswith("status/camera-capture")]
    assert b"offline" not in statuses
    stop_within_twice_grace(camera)


def test_a_live_stream_that_drops_is_retried_and_recovers(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=1)
    frames = probe("object-detector")
    frames.subscribe(f"{root}/camera/+/frame", qos=0)
    network_camera = MjpegCamera()
    network_camera.start()
    try:
        camera = stage("camera-capture", EDGEGW_SOURCE=network_camera.url, **QUICK)
        wait_online(observer, root, "camera-capture")
        frames.wait_for(lambda m: True, count=5, timeout_s=20)
        network_camera.stop()  # the stream drops and the camera stays away
        health_of(observer, root, "degraded")
        assert camera.poll() is None, camera.output()
        frames.clear()
        network_camera.start()
        frames.wait_for(lambda m: True, count=5, timeout_s=40)
        observer.clear()
        health_of(observer, root, "ok")
        statuses = [
            m.payload for m in observer.received() if m.topic.endswith("status/camera-capture")
        ]
        assert b"offline" not in statuses
        stop_within_twice_grace(camera)
    finally:
        network_camera.stop()
