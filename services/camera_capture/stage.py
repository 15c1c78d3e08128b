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
from services.camera_capture.capture import (
    Captured,
    FileSource,
    LiveSource,
    SourceError,
    check_source,
    is_live,
)
from services.camera_capture.jpeg_fit import FrameTooLarge, JpegFitter
from services.camera_capture.levels import measure_levels
from services.camera_capture.motion import MotionDecision, MotionGate, MotionSettings
from services.camera_capture.settings import (
    CameraCaptureSettings,
    CaptureConfig,
    effective_knobs,
)
from services.common.backoff import Backoff
from services.common.door import (
    InvalidMessage,
    MqttDoor,
    PublishFailed,
    Received,
)
from services.common.pacing import wait_set
from services.common.runtime_config import RuntimeConfig
from services.common.stage_runner import serve
from services.media.jpeg_encode import resize_to_fit
from services.media.jpeg_frame import (
    MAX_FRAME_HEIGHT,
    MAX_FRAME_WIDTH,
    Frame,
    FrameMeta,
    fit_size,
)
from services.media.video_profile import VideoProfile, load_video_profile

log = logging.getLogger(__name__)
# Frames whose JPEG sizes price the QoS levels: spread over the first seconds.
LEVEL_SAMPLE_EVERY = 10
LEVEL_SAMPLES = 3
# A source that fails (a stream drops, a device is unplugged, a file goes) is
# opened again after 1, 2, 4 ... s, at most 30 s apart (with jitter).
SOURCE_RETRY_INITIAL_S = 1.0
SOURCE_RETRY_MAX_S = 30.0
SOURCE_DOWN = "camera source unavailable"


def frame_bounds(knobs: CaptureConfig) -> tuple[int, int]:
    """The knobs' frame size, never over what receivers accept (they refuse
    a larger JPEG from its header)."""
    return min(knobs.max_width, MAX_FRAME_WIDTH), min(knobs.max_height, MAX_FRAME_HEIGHT)


@dataclass(frozen=True)
class Shot:
    """One captured frame after the gate: the JPEG is None when gated out."""

    captured_ts: float
    decision: MotionDecision
    jpeg: bytes | None
    width: int
    height: int
    raw: Frame
    quality: int


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
        self._captured = 0
        self._fitter = JpegFitter()
        self._last_fit: tuple[int, int, int] | None = None  # width, height, quality
        self._last_fit_lowered = False
        door.subscribe(QOS_KNOB, self.on_knob, analytic=settings.analytic)

    @property
    def knobs(self) -> CaptureConfig:
        return effective_knobs(self.config.current.for_camera(self._settings.camera), self._knob)

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

    def _shoot(
        self, source: FileSource | LiveSource, knobs: CaptureConfig, max_bytes: int
    ) -> Shot | None:
        """Blocking: read, gate, shrink and encode one frame within `max_bytes`."""
        captured: Captured | None = source.next_frame()
        if captured is None:
            return None
        ts = time.time()
        decision = self._gate.observe(captured.frame, ts)
        jpeg: bytes | None = None
        height, width = captured.frame.shape[:2]
        quality = knobs.jpeg_quality
        if decision.publish:
            small = resize_to_fit(captured.frame, *frame_bounds(knobs))
            try:
                fitted = self._fitter.encode(small, knobs.jpeg_quality, max_bytes)
            except FrameTooLarge as error:  # a broker limit of a few kB: nothing fits
                log.warning("frame not sent", extra={"reason": str(error)})
                return Shot(ts, decision, None, width, height, captured.frame, quality)
            jpeg, width, height, quality = fitted.jpeg, fitted.width, fitted.height, fitted.quality
        return Shot(ts, decision, jpeg, width, height, captured.frame, quality)

    def _frame_limit(self) -> int:
        """The largest JPEG the door publishes on the frame topic (its
        properties sized for the longest values a frame carries)."""
        widest = FrameMeta(10**12, time.time(), MAX_FRAME_WIDTH, MAX_FRAME_HEIGHT)
        return self._door.payload_limit(
            FRAME, user_properties=widest.to_properties(), camera=self._settings.camera
        )

    def _say_if_refitted(self, shot: Shot, knobs: CaptureConfig) -> None:
        """Count every frame sent below the knobs' quality or size, and log
        each change of what fitted."""
        if shot.jpeg is None:
            return
        raw_height, raw_width = shot.raw.shape[:2]
        asked = fit_size(raw_width, raw_height, *frame_bounds(knobs))
        fitted = (shot.width, shot.height, shot.quality)
        lowered = fitted != (*asked, knobs.jpeg_quality)
        if lowered:
            self._door.metrics.count("frames_refitted")
        if fitted != self._last_fit:
            if lowered:
                log.warning(
                    "frame over the publish limit: quality or size lowered to fit",
                    extra={
                        "asked": f"{asked[0]}x{asked[1]} q{knobs.jpeg_quality}",
                        "sent": f"{shot.width}x{shot.height} q{shot.quality}",
                        "bytes": len(shot.jpeg),
                        "limit": self._frame_limit(),
                    },
                )
            elif self._last_fit is not None and self._last_fit_lowered:
                log.info("frames fit again at the knobs' quality and size")
            self._last_fit, self._last_fit_lowered = fitted, lowered

    async def capture(self, stop: asyncio.Event) -> None:
        """Capture until stopped or the source ends; a source that fails is
        opened again with backoff while health says `degraded`."""
        backoff = Backoff(SOURCE_RETRY_INITIAL_S, SOURCE_RETRY_MAX_S)
        while not stop.is_set():
            try:
                source = await asyncio.to_thread(self._open_source)
            except SourceError as error:
                await self._source_down(error, backoff, stop)
                continue
            failure: SourceError | None = None
            try:
                await self._capture_loop(source, stop, backoff)
            except SourceError as error:
                failure = error
            finally:
                await asyncio.to_thread(source.close)
            if failure is None:
                break
            await self._source_down(failure, backoff, stop)
        stop.set()  # a finite source ends the stage

    async def _source_down(self, error: SourceError, backoff: Backoff, stop: asyncio.Event) -> None:
        """Report the failed source (health `degraded`) and wait out the backoff."""
        delay = backoff.next_delay()
        reason = f"{SOURCE_DOWN}: {error}"
        metrics = self._door.metrics
        metrics.count("source_failures")
        if metrics.degraded != reason:
            log.warning("camera source failed: retrying", extra={"error": str(error)})
        metrics.degraded = reason
        await wait_set(stop, delay)

    def _source_up(self, backoff: Backoff) -> None:
        metrics = self._door.metrics
        if metrics.degraded is not None and metrics.degraded.startswith(SOURCE_DOWN):
            metrics.degraded = None
            metrics.count("source_recoveries")
            log.info("camera source back")
        backoff.reset()

    async def _capture_loop(
        self, source: FileSource | LiveSource, stop: asyncio.Event, backoff: Backoff
    ) -> None:
        """Frames until stopped, the source ends or `max_frames`; SourceError
        when the source fails."""
        settings = self._settings
        due = time.monotonic()
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
            shot = await asyncio.to_thread(self._shoot, source, knobs, self._frame_limit())
            if shot is None:
                if isinstance(source, LiveSource):
                    self._door.metrics.count("camera_stalls")
                    continue
                log.info("source ended", extra={"frames": self._captured})
                break
            self._source_up(backoff)
            self._captured += 1
            self._door.metrics.count("frames_captured")
            self._say_if_refitted(shot, knobs)
            await self._publish(shot, knobs)
            await self._maybe_publish_levels(shot.raw)
            if settings.max_frames and self._captured >= settings.max_frames:
                log.info("max_frames reached", extra={"frames": self._captured})
                break

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
            self._door.metrics.gauge("jpeg_quality", shot.quality)

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
    """Raises SourceError before connecting when the source can never work."""
    await asyncio.to_thread(check_source, settings.source)
    # A missing or broken profile fails here, at start-up, naming the file.
    profile = await asyncio.to_thread(load_video_profile, settings.levels_profile)
    door = MqttDoor(settings, CAMERA_CAPTURE)
    stage = CameraStage(door, settings, profile)
    await serve(door, [stage.capture], stop=stop)
