"""The async shell of object-detector: frames in (shared subscription, latest
wins per camera), inference off the event loop, each frame's detections out
(`detections/<cam>/frame`, with the frame's seq and capture time) for
object-tracker, which puts every replica's results back in order.

Stateless across frames: any number of replicas, on any node. What it keeps
per camera is only what prices its QoS levels.

The MQTT handler only checks the frame's properties and drops it in the
camera's one-slot mailbox (latest wins, cameras in turn). `DetectionPipeline`
then decodes and resizes the next frame in one thread while the model runs on
the current one in another, so the model runs at its own speed on one core
while the other does the rest; each result comes back to the event loop,
which crops (with snapshots on), publishes and prices the levels, with one
inferred frame waiting at most, so a slow publisher holds the model back
rather than building a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from functools import partial

import orjson
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
from schemas.topics import (
    DETECTIONS,
    FRAME,
    FRAME_DETECTIONS,
    OBJECT_DETECTOR,
    QOS_KNOB,
    QOS_LEVELS,
    SNAPSHOT,
)
from schemas.video import Box, Detection, FoundObject, FrameDetections
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
from services.media.jpeg_decode import decode_jpeg
from services.media.jpeg_frame import (
    BadFrameMetaError,
    CorruptJpegError,
    FrameMeta,
    check_jpeg_size,
)
from services.media.video_profile import VideoProfile, load_video_profile
from services.object_detector.levels import (
    CameraUsage,
    price_levels,
    repricing_needed,
)
from services.object_detector.mailbox import LatestFrames, PendingFrame, TooManyCameras
from services.object_detector.pipeline import (
    DetectionPipeline,
    FrameRejected,
    Inferred,
    Prepared,
    Rejected,
)
from services.object_detector.settings import (
    DetectorConfig,
    ObjectDetectorSettings,
    effective_config,
)
from services.object_detector.snapshots import crop_snapshot
from services.object_detector.ssd import SSDDetector, load_detector

log = logging.getLogger(__name__)
# Inferred frames waiting for the publisher: one, so a publisher that falls
# behind holds the model back and the backlog stays in the latest-wins mailbox.
RESULTS_WAITING = 1
CROPS = {"objects": {"__all__": {"crop"}}}
IDLE_CHECK_S = 0.5
THREAD_CHECK_S = 0.1  # while stopping: how often to look whether the threads ended


def parse_frame_properties(properties: dict[str, str]) -> tuple[int, float, int, int]:
    """(seq, capture_ts, width, height) from a frame's MQTT 5 user properties."""
    try:
        meta = FrameMeta.from_properties(properties)
    except BadFrameMetaError as error:
        raise InvalidMessage(str(error)) from None
    return meta.seq, meta.capture_ts, meta.width, meta.height


@dataclass
class CameraState:
    last_frame: float = field(default_factory=time.monotonic)
    usage: CameraUsage = field(default_factory=CameraUsage)
    published_levels: list[QosLevel] | None = None
    priced_at: float = 0.0  # monotonic
    frames_at_pricing: int = 0
    frames_processed: int = 0


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
        self._pipeline = DetectionPipeline(
            self._mailbox, self._prepare, self._infer, results_waiting=RESULTS_WAITING
        )
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
        for state in self._cameras.values():
            # New shares re-score the levels on the camera's next frame.
            state.priced_at, state.frames_at_pricing = 0.0, 0

    def _state_of(self, camera: str) -> CameraState:
        state = self._cameras.get(camera)
        if state is None:
            state = self._cameras[camera] = CameraState()
        return state

    # -- the pipeline's two threads: prepare (decode, resize) | infer -------------

    def _prepare(self, pending: PendingFrame) -> Prepared:
        """Blocking, in the decode thread: decode and resize."""
        try:
            frame = decode_jpeg(pending.raw)
        except CorruptJpegError as error:
            raise FrameRejected(str(error)) from None
        height, width = frame.shape[:2]
        if (width, height) != (pending.width, pending.height):
            raise FrameRejected(
                f"properties say {pending.width}x{pending.height}, the JPEG is {width}x{height}"
            )
        config = self.config_of(pending.camera)
        return Prepared(pending, frame, self._detector.preprocess(frame), config)

    def _infer(self, prepared: Prepared) -> list[Detection]:
        """Blocking, in the model thread."""
        pending = prepared.pending
        return self._detector.infer(
            prepared.tensor, pending.width, pending.height, prepared.config.detection_min_score
        )

    # -- back on the event loop: crops, publishing, levels ----------------------

    async def publish_results(self, stop: asyncio.Event) -> None:
        self._pipeline.start()
        try:
            while not stop.is_set():
                await self._handle(await self._pipeline.next_result(IDLE_CHECK_S))
            # Stopping: the frame in hand is still detected and published.
            self._pipeline.stop()
            while self._pipeline.running:
                await self._handle(await self._pipeline.next_result(THREAD_CHECK_S))
            await self._handle(await self._pipeline.next_result(THREAD_CHECK_S))
        finally:
            self._pipeline.abandon()

    async def _handle(self, result: Inferred | Rejected | None) -> None:
        if isinstance(result, Rejected):
            await self._door.dead_letter(result.pending.topic, result.pending.raw, result.reason)
        elif isinstance(result, Inferred):
            snapshots = result.prepared.config.snapshots and result.found
            # Crops encode JPEGs: off the event loop, when there are any.
            if snapshots:
                found = await asyncio.to_thread(self._with_crops, result)
            else:
                found = self._with_crops(result)
            await self._publish(result.prepared.pending, found)
        self._forget_silent_cameras()

    def _with_crops(self, inferred: Inferred) -> FrameDetections:
        """Blocking: the message, with each object's crop when snapshots are on
        (only the tracker knows which objects are new)."""
        pending, config = inferred.prepared.pending, inferred.prepared.config
        frame = inferred.prepared.frame
        objects = [
            FoundObject(
                label=d.label,
                score=min(1.0, d.score),
                box=Box(x1=d.box.x1, y1=d.box.y1, x2=d.box.x2, y2=d.box.y2),
                crop=crop_snapshot(frame, d.box) if config.snapshots else None,
            )
            for d in inferred.found
        ]
        return FrameDetections(
            source=OBJECT_DETECTOR,
            camera=pending.camera,
            seq=pending.seq,
            capture_ts=pending.capture_ts,
            width=pending.width,
            height=pending.height,
            objects=objects,
            inference_ms=round(inferred.inference_ms, 3),
            instance=self._settings.instance,
            snapshots=config.snapshots,
            result_rate=config.result_rate,
            dropped=pending.replaced,
        )

    async def _publish(self, pending: PendingFrame, found: FrameDetections) -> None:
        state = self._state_of(pending.camera)
        state.last_frame = time.monotonic()
        metrics = self._door.metrics
        metrics.count("frames_processed")
        metrics.gauge("inference_ms", found.inference_ms)
        metrics.gauge("frames_dropped_total", self._mailbox.dropped)
        state.frames_processed += 1
        metrics.gauge(f"frames_processed.{pending.camera}", state.frames_processed)
        dropped = self._mailbox.dropped_by_camera[pending.camera]
        metrics.gauge(f"frames_dropped.{pending.camera}", dropped)
        # Priced as the detections object-tracker publishes from these (the
        # same objects, a track id more each), at the knob's result rate.
        root = self._door.root
        topic = DETECTIONS.topic(root, camera=pending.camera)
        # The crops are not part of what object-tracker publishes; they price snapshots.
        results = orjson.dumps(found.model_dump(mode="json", exclude=CROPS))
        state.usage.observe_frame(pending.capture_ts, publish_bytes(topic, results))
        for obj in found.objects:
            if obj.crop is not None:
                label = obj.label.replace(" ", "_")
                snapshot_topic = SNAPSHOT.topic(root, camera=pending.camera, label=label)
                state.usage.observe_snapshot(publish_bytes(snapshot_topic, obj.crop))
        with contextlib.suppress(PublishFailed):  # QoS 0: the tracker skips a lost frame
            await self._door.publish(FRAME_DETECTIONS, found, camera=pending.camera)
        self.summary.add("frames", pending.camera)
        for obj in found.objects:
            self.summary.add("objects", f"{pending.camera}.{obj.label}")
        metrics.gauge("latency_ms", round((time.time() - pending.capture_ts) * 1000, 3))
        await self._maybe_publish_levels(pending.camera, state)

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

    def _forget_silent_cameras(self) -> None:
        limit = self._settings.camera_silent_after_s
        now = time.monotonic()
        for camera, state in list(self._cameras.items()):
            if now - state.last_frame >= limit:
                del self._cameras[camera]
                self._mailbox.forget(camera)
                for gauge in ("frames_processed", "frames_dropped"):
                    self._door.metrics.gauges.pop(f"{gauge}.{camera}", None)


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
    await serve(
        door,
        [stage.publish_results, summaries],
        stop=stop,
    )
