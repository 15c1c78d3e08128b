"""The async shell of camera-capture: frames paced at the knob's fps, the
motion gate, JPEG encode off the event loop, frames and motion scores out.

Knobs come from the retained `config/camera-capture` and the retained
`qos/camera.<cam>` (the allocator's level, which overrides fps, size and
quality); both are re-read before every frame, so a change applies on the
next frame without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from schemas.analytics import CameraKnobParams, InvalidKnobParams, knob_params
from schemas.qos import QosKnob, QosLevels
from schemas.topics import CAMERA_CAPTURE, FRAME, MOTION, QOS_KNOB, QOS_LEVELS
from schemas.video import MotionScore
from services.camera_capture.capture import Captured, FileSource, LiveSource, is_live
from services.camera_capture.levels import measure_levels
from services.camera_capture.motion import MotionDecision, MotionGate, MotionSettings
from services.camera_capture.settings import (
    CameraCaptureSettings,
    CaptureConfig,
    effective_knobs,
)
from services.common.door import (
    InvalidMessage,
    MqttDoor,
    PublishFailed,
    Received,
)
from services.common.pacing import wait_set
from services.common.runtime_config import RuntimeConfig
from services.common.stage_runner import serve
from services.media.jpeg_frame import Frame, FrameMeta, encode_jpeg, resize_to_fit
from services.media.video_profile import VideoProfile, load_video_profile

log = logging.getLogger(__name__)
# Frames whose JPEG sizes price the QoS levels: spread over the first seconds.
LEVEL_SAMPLE_EVERY = 10
LEVEL_SAMPLES = 3


@dataclass(frozen=True)
class Shot:
    """One captured frame after the gate: the JPEG is None when gated out."""

    captured_ts: float
    decision: MotionDecision
    jpeg: bytes | None
    width: int
    height: int
    raw: Frame


class CameraStage:
    def __init__(
        self, door: MqttDoor, settings: CameraCaptureSettings, profile: VideoProfile
    ) -> None:
        self._door = door
        self._settings = settings
        self._profile = profile
        self.config = RuntimeConfig(door, CaptureConfig, settings.startup_config())
        self._knob: CameraKnobParams | None = None
        self._gate = MotionGate(self._motion_settings(self.knobs))
        self._seq = 0
        self._level_frames: list[Frame] = []
        self._levels_published = False
        door.subscribe(QOS_KNOB, self.on_knob, analytic=settings.analytic)

    @property
    def knobs(self) -> CaptureConfig:
        return effective_knobs(self.config.current, self._knob)

    async def on_knob(self, message: Received[QosKnob | None]) -> None:
        if message.payload is None:  # the allocator cleared the knob: config alone rules
            self._knob = None
            log.info("qos knob cleared")
            return
        try:
            knob = knob_params(CameraKnobParams, message.payload)
        except InvalidKnobParams as error:
            raise InvalidMessage(str(error)) from None
        self._knob = knob
        log.info("qos knob applied", extra={"level": message.payload.level.name})

    @staticmethod
    def _motion_settings(knobs: CaptureConfig) -> MotionSettings:
        return MotionSettings(
            enabled=knobs.motion_enabled,
            sensitivity=knobs.motion_sensitivity,
            keyframe_interval_s=knobs.keyframe_interval_s,
        )

    def _open_source(self) -> FileSource | LiveSource:
        settings = self._settings
        if is_live(settings.source):
            return LiveSource(settings.source)
        return FileSource(
            settings.source, loop=settings.loop, realtime=settings.file_pacing == "realtime"
        )

    def _shoot(self, source: FileSource | LiveSource, knobs: CaptureConfig) -> Shot | None:
        """Blocking: read, gate, shrink and encode one frame."""
        captured: Captured | None = source.next_frame()
        if captured is None:
            return None
        ts = time.time()
        decision = self._gate.observe(captured.frame, ts)
        jpeg: bytes | None = None
        height, width = captured.frame.shape[:2]
        if decision.publish:
            small = resize_to_fit(captured.frame, knobs.max_width, knobs.max_height)
            height, width = small.shape[:2]
            jpeg = encode_jpeg(small, knobs.jpeg_quality)
        return Shot(ts, decision, jpeg, width, height, captured.frame)

    async def capture(self, stop: asyncio.Event) -> None:
        source = await asyncio.to_thread(self._open_source)
        try:
            await self._capture_loop(source, stop)
        finally:
            await asyncio.to_thread(source.close)

    async def _capture_loop(self, source: FileSource | LiveSource, stop: asyncio.Event) -> None:
        settings = self._settings
        due = time.monotonic()
        captured = 0
        while not stop.is_set():
            knobs = self.knobs
            motion = self._motion_settings(knobs)
            if motion != self._gate.settings:
                self._gate.reconfigure(motion)
            delay = due - time.monotonic()
            if delay > 0:
                await wait_set(stop, delay)
                if stop.is_set():
                    break
            period = 1.0 / knobs.fps
            # A late tick does not bunch the next ones up: pace from now.
            due = max(due + period, time.monotonic())
            shot = await asyncio.to_thread(self._shoot, source, knobs)
            if shot is None:
                if isinstance(source, LiveSource):
                    self._door.metrics.count("camera_stalls")
                    continue
                log.info("source ended", extra={"frames": captured})
                break
            captured += 1
            self._door.metrics.count("frames_captured")
            await self._publish(shot, knobs)
            await self._maybe_publish_levels(shot.raw)
            if settings.max_frames and captured >= settings.max_frames:
                log.info("max_frames reached", extra={"frames": captured})
                break
        stop.set()  # a finite source ends the stage

    async def _publish(self, shot: Shot, knobs: CaptureConfig) -> None:
        seq = self._seq
        self._seq += 1
        camera = self._settings.camera
        with contextlib.suppress(PublishFailed):  # QoS 0: the next frame replaces it
            if knobs.motion_enabled:
                score = MotionScore(
                    source=CAMERA_CAPTURE,
                    camera=camera,
                    seq=seq,
                    score=round(shot.decision.score, 6),
                    motion=shot.decision.motion,
                    keyframe=shot.decision.keyframe,
                )
                await self._door.publish(MOTION, score, camera=camera)
            if shot.jpeg is None:
                self._door.metrics.count("frames_gated")
                return
            properties = FrameMeta(seq, shot.captured_ts, shot.width, shot.height).to_properties()
            await self._door.publish(FRAME, shot.jpeg, user_properties=properties, camera=camera)
            self._door.metrics.count("frames_published")
            self._door.metrics.count("frame_bytes", len(shot.jpeg))
            self._door.metrics.gauge("width", shot.width)
            self._door.metrics.gauge("height", shot.height)
            self._door.metrics.gauge("fps", knobs.fps)

    async def _maybe_publish_levels(self, frame: Frame) -> None:
        settings = self._settings
        if not settings.publish_levels or self._levels_published:
            return
        if self._seq % LEVEL_SAMPLE_EVERY != 1:
            return
        self._level_frames.append(frame.copy())
        if len(self._level_frames) < LEVEL_SAMPLES:
            return
        levels = await asyncio.to_thread(
            measure_levels,
            self._level_frames,
            settings.level_fps,
            settings.level_widths,
            settings.level_qualities,
            self._profile,
        )
        message = QosLevels(source=CAMERA_CAPTURE, analytic=settings.analytic, levels=levels)
        try:
            await self._door.publish(QOS_LEVELS, message, analytic=settings.analytic)
            log.info("qos levels published", extra={"levels": len(levels)})
        except PublishFailed as error:
            log.warning("qos levels not published", extra={"error": str(error)})
        self._levels_published = True  # measured once per run
        self._level_frames = []


async def run(settings: CameraCaptureSettings, stop: asyncio.Event | None = None) -> None:
    # A missing or broken profile fails here, at start-up, naming the file.
    profile = await asyncio.to_thread(load_video_profile, settings.levels_profile)
    door = MqttDoor(settings, CAMERA_CAPTURE)
    stage = CameraStage(door, settings, profile)
    await serve(door, [stage.capture], stop=stop)
