"""The async shell of object-detector: frames in (shared subscription, latest
wins per camera), inference off the event loop, detections, tracked-object
events and snapshots out.

The MQTT handler only checks the frame's properties and drops it in the
camera's one-slot mailbox; one worker takes frames from the mailbox and runs
decode, model, tracker and event rules in a thread, so the event loop keeps
receiving (and replacing) frames while the model runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from functools import partial

from pydantic import ValidationError

from schemas.analytics import (
    DetectorKnobParams,
    InvalidKnobParams,
    detector_analytic,
    knob_params,
    source_of,
)
from schemas.qos import QosKnob, QosLevel, QosLevels
from schemas.topic_spec import publish_bytes
from schemas.topics import DETECTIONS, EVENT, FRAME, OBJECT_DETECTOR, QOS_KNOB, QOS_LEVELS, SNAPSHOT
from schemas.video import Box, DetectedObject, Detections
from services.common.door import (
    InvalidMessage,
    MqttDoor,
    PublishFailed,
    Received,
    describe_validation_error,
)
from services.common.periodic_summary import Tally, publish_summaries
from services.common.runtime_config import RuntimeConfig
from services.common.stage_runner import serve
from services.media.jpeg_frame import (
    BadFrameMetaError,
    CorruptJpegError,
    FrameMeta,
    check_jpeg_size,
    decode_jpeg,
)
from services.media.video_profile import VideoProfile, load_video_profile
from services.object_detector import events as lifecycle
from services.object_detector.events import crop_snapshot, to_message
from services.object_detector.levels import (
    CameraUsage,
    price_levels,
    repricing_needed,
)
from services.object_detector.mailbox import LatestFrames, PendingFrame, TooManyCameras
from services.object_detector.settings import (
    DetectorConfig,
    ObjectDetectorSettings,
    effective_config,
)
from services.object_detector.ssd import SSDDetector, load_detector
from services.object_detector.tracker import IouTracker, TrackerStep

log = logging.getLogger(__name__)
IDLE_CHECK_S = 0.5


def parse_frame_properties(properties: dict[str, str]) -> tuple[int, float, int, int]:
    """(seq, capture_ts, width, height) from a frame's MQTT 5 user properties."""
    try:
        meta = FrameMeta.from_properties(properties)
    except BadFrameMetaError as error:
        raise InvalidMessage(str(error)) from None
    return meta.seq, meta.capture_ts, meta.width, meta.height


@dataclass
class CameraState:
    tracker: IouTracker
    events: lifecycle.ObjectEventBuilder
    last_frame: float = field(default_factory=time.monotonic)
    last_result_ts: float | None = None  # capture time of the latest published detections
    usage: CameraUsage = field(default_factory=CameraUsage)
    published_levels: list[QosLevel] | None = None
    priced_at: float = 0.0  # monotonic
    frames_at_pricing: int = 0


@dataclass(frozen=True)
class Analysis:
    detections: Detections
    events: list[lifecycle.TrackedObjectChange]
    snapshots: dict[str, bytes]  # event id -> JPEG crop


class DetectorStage:
    def __init__(
        self,
        door: MqttDoor,
        settings: ObjectDetectorSettings,
        detector: SSDDetector,
        profile: VideoProfile,
    ) -> None:
        self._door = door
        self._settings = settings
        self._detector = detector
        self._profile = profile
        self.summary = Tally(time.time())
        # camera -> the allocator's knob; kept apart from CameraState so a
        # retained knob that arrives before the camera's first frame holds.
        self._knobs: dict[str, DetectorKnobParams] = {}
        self.config = RuntimeConfig(door, DetectorConfig, settings.startup_config())
        self.config.on_change(self._reconfigure)
        self._mailbox = LatestFrames(settings.max_cameras)
        self._cameras: dict[str, CameraState] = {}
        params = {"camera": settings.camera} if settings.camera else {}
        door.subscribe(FRAME, self.on_frame, share_group=settings.share_group or None, **params)
        # Every detector replica obeys every knob (not a shared subscription).
        knob_filter = {"analytic": detector_analytic(settings.camera)} if settings.camera else {}
        door.subscribe(QOS_KNOB, self.on_knob, **knob_filter)

    def config_of(self, camera: str) -> DetectorConfig:
        """The config in force for `camera`: the operator's, with its knob laid over."""
        return effective_config(self.config.current.for_camera(camera), self._knobs.get(camera))

    async def on_knob(self, message: Received[QosKnob | None]) -> None:
        camera = source_of("detector", message.params["analytic"])
        if camera is None:
            return  # another analytic's knob: the wildcard subscription sees them all
        if message.payload is None:  # cleared: the config alone rules again
            if self._knobs.pop(camera, None) is not None:
                log.info("qos knob cleared", extra={"camera": camera})
            return
        try:
            knob = knob_params(DetectorKnobParams, message.payload)
        except InvalidKnobParams as error:
            raise InvalidMessage(str(error)) from None
        if camera not in self._knobs and len(self._knobs) >= self._settings.max_cameras:
            raise InvalidMessage(f"more than {self._settings.max_cameras} cameras have knobs")
        self._knobs[camera] = knob
        log.info("qos knob applied", extra={"camera": camera, "level": message.payload.level.name})

    async def on_frame(self, message: Received[bytes]) -> None:
        seq, capture_ts, width, height = parse_frame_properties(message.properties)
        raw = message.raw
        # The cheap half of the JPEG check here, so an obviously broken frame
        # never takes a slot; the decode itself runs in the worker's thread.
        if not raw.startswith(b"\xff\xd8") or b"\xff\xd9" not in raw[-16:]:
            raise InvalidMessage(f"not a complete JPEG: {len(raw)} bytes starting {raw[:4].hex()}")
        # Sizes before decoding: the header's dimensions, read without
        # decoding a pixel, within what a camera sends and as announced.
        try:
            header_size = check_jpeg_size(raw)
        except CorruptJpegError as error:
            raise InvalidMessage(str(error)) from None
        if header_size != (width, height):
            claimed = f"{header_size[0]}x{header_size[1]}"
            raise InvalidMessage(f"properties say {width}x{height}, the JPEG header {claimed}")
        if not self.config.current.detects(message.params["camera"]):
            self._door.metrics.count("frames_not_detected")  # its detect switch is off
            return
        frame = PendingFrame(
            message.topic, message.params["camera"], raw, seq, capture_ts, width, height
        )
        try:
            replaced = self._mailbox.put(frame)
        except TooManyCameras as error:
            raise InvalidMessage(str(error)) from None
        self._door.metrics.count("frames_received")
        if replaced:
            self._door.metrics.count("frames_dropped")

    def _reconfigure(self, config: DetectorConfig) -> None:
        for camera, state in self._cameras.items():
            state.events.reconfigure(config.zones_of(camera), config.label_filter, config.min_score)
            # New shares re-score the levels on the camera's next frame.
            state.priced_at, state.frames_at_pricing = 0.0, 0

    def _state_of(self, camera: str) -> CameraState:
        state = self._cameras.get(camera)
        if state is None:
            settings, config = self._settings, self.config.current
            state = CameraState(
                tracker=IouTracker(
                    iou_threshold=settings.track_iou,
                    min_hits=settings.track_min_hits,
                    max_misses=settings.track_max_misses,
                ),
                events=lifecycle.ObjectEventBuilder(
                    camera,
                    zones=config.zones_of(camera),
                    labels=config.label_filter,
                    min_score=config.min_score,
                ),
            )
            self._cameras[camera] = state
        return state

    def _analyse(
        self, pending: PendingFrame, state: CameraState, config: DetectorConfig
    ) -> Analysis:
        """Blocking: decode, detect, track, turn tracks into events."""
        try:
            frame = decode_jpeg(pending.raw)
        except CorruptJpegError as error:
            raise InvalidMessage(str(error)) from None
        height, width = frame.shape[:2]
        if (width, height) != (pending.width, pending.height):
            raise InvalidMessage(
                f"properties say {pending.width}x{pending.height}, the JPEG is {width}x{height}"
            )
        started = time.perf_counter()
        found = self._detector.detect(frame, min_score=config.detection_min_score)
        inference_ms = (time.perf_counter() - started) * 1000
        state.last_frame = time.monotonic()
        step = state.tracker.update(found, pending.capture_ts)
        events = state.events.update(step, pending.capture_ts, width, height)
        track_of = {track.box: track.track_id for track in step.active if track.matched}
        objects = [
            DetectedObject(
                label=d.label,
                score=min(1.0, d.score),
                box=Box(x1=d.box.x1, y1=d.box.y1, x2=d.box.x2, y2=d.box.y2),
                track_id=track_of.get(d.box),
            )
            for d in found
        ]
        snapshots: dict[str, bytes] = {}
        if config.snapshots:
            for event in events:
                if event.type == "new":
                    crop = crop_snapshot(frame, event.box)
                    if crop is not None:
                        snapshots[event.id] = crop
        detections = Detections(
            source=OBJECT_DETECTOR,
            camera=pending.camera,
            seq=pending.seq,
            capture_ts=pending.capture_ts,
            width=width,
            height=height,
            objects=objects,
            inference_ms=round(inference_ms, 3),
            instance=self._settings.instance,
        )
        return Analysis(detections, events, snapshots)

    async def detect_frames(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            pending = await self._mailbox.take(IDLE_CHECK_S)
            if pending is not None:
                await self._process(pending)
            await self._end_silent_cameras()
        # Shutting down: every open event ends, so no consumer waits forever.
        for camera, state in self._cameras.items():
            await self._publish_ended(camera, state)

    async def _process(self, pending: PendingFrame) -> None:
        try:
            # The state is made here, on the loop, where config changes touch it.
            state = self._state_of(pending.camera)
            config = self.config_of(pending.camera)
            analysis = await asyncio.to_thread(self._analyse, pending, state, config)
        except InvalidMessage as error:
            await self._door.dead_letter(pending.topic, pending.raw, str(error))
            return
        metrics = self._door.metrics
        metrics.count("frames_processed")
        metrics.gauge("inference_ms", analysis.detections.inference_ms)
        metrics.gauge("frames_dropped_total", self._mailbox.dropped)
        detections = analysis.detections
        topic = DETECTIONS.topic(self._door.root, camera=pending.camera)
        size = publish_bytes(topic, detections.to_bytes())
        state.usage.observe_frame(pending.capture_ts, size)
        if self._result_due(state, config, pending.capture_ts):
            state.last_result_ts = pending.capture_ts
            with contextlib.suppress(PublishFailed):  # QoS 0: the next frame's replaces it
                await self._door.publish(DETECTIONS, detections, camera=pending.camera)
        else:
            metrics.count("detections_throttled")
        metrics.gauge("latency_ms", round((time.time() - pending.capture_ts) * 1000, 3))
        for event in analysis.events:
            await self._publish_event(event, analysis.snapshots.get(event.id), state.usage)
        await self._maybe_publish_levels(pending.camera, state)

    @staticmethod
    def _result_due(state: CameraState, config: DetectorConfig, capture_ts: float) -> bool:
        """At most `result_rate` detections messages per second, paced on the
        frames' capture times (regular, unlike arrival times)."""
        if config.result_rate <= 0 or state.last_result_ts is None:
            return True
        gap = capture_ts - state.last_result_ts
        # 5 % slack: a camera at exactly the rate must not lose every other frame to jitter.
        return gap < 0 or gap >= 0.95 / config.result_rate

    async def _maybe_publish_levels(self, camera: str, state: CameraState) -> None:
        usage, every = state.usage, self._settings.levels_after_frames
        if not self._settings.publish_levels or usage.frames - state.frames_at_pricing < every:
            return
        now = time.monotonic()
        recent = now - state.priced_at < self._settings.levels_reprice_s
        if state.published_levels is not None and recent:
            return
        state.frames_at_pricing, state.priced_at = usage.frames, now
        analytic = detector_analytic(camera)
        levels = price_levels(usage, self._profile, self.config.current.level_utility)
        if state.published_levels is not None and not repricing_needed(
            state.published_levels, levels
        ):
            return
        try:
            message = QosLevels(source=OBJECT_DETECTOR, analytic=analytic, levels=levels)
        except ValidationError as error:  # a camera name too long for an analytic name
            log.warning("qos levels not valid", extra={"error": describe_validation_error(error)})
            state.published_levels = levels
            return
        try:
            await self._door.publish(QOS_LEVELS, message, analytic=analytic)
        except PublishFailed as error:
            log.warning("qos levels not published", extra={"error": str(error)})
            return
        state.published_levels = levels
        log.info("qos levels published", extra={"camera": camera, "levels": len(levels)})

    async def _publish_event(
        self,
        event: lifecycle.TrackedObjectChange,
        snapshot: bytes | None,
        usage: CameraUsage | None = None,
    ) -> None:
        message = to_message(event, snapshot is not None)
        # COCO has labels with spaces ("traffic light"): not a topic level.
        label = event.label.replace(" ", "_")
        try:
            if snapshot is not None:
                await self._door.publish(SNAPSHOT, snapshot, camera=event.camera, label=label)
            await self._door.publish(EVENT, message, source=event.camera)
        except PublishFailed as error:
            self._door.metrics.count("events_lost")
            log.warning("event not published", extra={"event_id": event.id, "error": str(error)})
            return
        self._door.metrics.count(f"events_{event.type}")
        if event.type == "new":
            self.summary.add("new_objects", f"{event.camera}.{event.label}")
        if usage is not None:
            root = self._door.root
            event_topic = EVENT.topic(root, source=event.camera)
            usage.observe_event(event.type, publish_bytes(event_topic, message.to_bytes()))
            if snapshot is not None:
                snapshot_topic = SNAPSHOT.topic(root, camera=event.camera, label=label)
                usage.observe_snapshot(publish_bytes(snapshot_topic, snapshot))
        log.info(
            "object event",
            extra={"event_id": event.id, "type": event.type, "label": event.label},
        )

    async def _end_silent_cameras(self) -> None:
        limit = self._settings.camera_silent_after_s
        now = time.monotonic()
        for camera, state in list(self._cameras.items()):
            if now - state.last_frame >= limit:
                await self._publish_ended(camera, state)
                del self._cameras[camera]

    async def _publish_ended(self, camera: str, state: CameraState) -> None:
        ended = TrackerStep(active=(), ended=state.tracker.flush())
        for event in state.events.update(ended, time.time(), 1, 1):
            await self._publish_event(event, None)


async def run(settings: ObjectDetectorSettings, stop: asyncio.Event | None = None) -> None:
    # A missing or broken model fails here, at start-up, naming the path.
    detector = await asyncio.to_thread(
        load_detector, settings.model_path, settings.labels_path, settings.threads
    )
    profile = await asyncio.to_thread(load_video_profile, settings.levels_profile)
    door = MqttDoor(settings, OBJECT_DETECTOR)
    stage = DetectorStage(door, settings, detector, profile)
    summaries = partial(
        publish_summaries, door, OBJECT_DETECTOR, stage.summary, settings.summary_period_s
    )
    await serve(door, [stage.detect_frames, summaries], stop=stop)
