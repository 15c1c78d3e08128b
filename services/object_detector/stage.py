"""The async shell of object-detector: frames in (shared subscription, latest
wins per camera), inference off the event loop, each frame's detections out
(`detections/<cam>/frame`, with the frame's seq and capture time) for
object-tracker, which puts every replica's results back in order.

Stateless across frames: any number of replicas, on any node. What it keeps
per camera is only what prices its QoS levels.

The MQTT handler only checks the frame's properties and drops it in the
camera's one-slot mailbox (latest wins). Then a pipeline of three workers, so
the model runs at its own speed on one core while the other does the rest:
- prepare: takes the newest frame just before the model is free, decodes and
  resizes it in a thread, and leaves it in a one-frame hand-off;
- infer: runs the model on the prepared frame in another thread;
- publish: crops (with snapshots on), builds and publishes the message and
  prices the levels, with one inferred frame waiting at most, so a slow
  publisher holds the model back rather than building a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import numpy.typing as npt
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
from services.common.pacing import wait_set
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
from services.object_detector.levels import (
    CameraUsage,
    price_levels,
    repricing_needed,
)
from services.object_detector.mailbox import LatestFrames, PendingFrame, TooManyCameras
from services.object_detector.pipeline_pace import PreparePace
from services.object_detector.settings import (
    DetectorConfig,
    ObjectDetectorSettings,
    effective_config,
)
from services.object_detector.snapshots import crop_snapshot
from services.object_detector.ssd import Frame, SSDDetector, load_detector

log = logging.getLogger(__name__)
# Inferred frames waiting for the publisher: one, so a publisher that falls
# behind holds the model back and the backlog stays in the latest-wins mailbox.
RESULTS_WAITING = 1
CROPS = {"objects": {"__all__": {"crop"}}}
IDLE_CHECK_S = 0.5


def parse_frame_properties(properties: dict[str, str]) -> tuple[int, float, int, int]:
    """(seq, capture_ts, width, height) from a frame's MQTT 5 user properties."""
    try:
        meta = FrameMeta.from_properties(properties)
    except BadFrameMetaError as error:
        raise InvalidMessage(str(error)) from None
    return meta.seq, meta.capture_ts, meta.width, meta.height


@dataclass(frozen=True)
class Prepared:
    """A frame decoded and resized for the model, waiting in the one-slot hand-off."""

    pending: PendingFrame
    frame: Frame
    tensor: npt.NDArray[np.generic]
    config: DetectorConfig


@dataclass(frozen=True)
class Inferred:
    prepared: Prepared
    found: list[Detection]
    inference_ms: float


@dataclass
class CameraState:
    last_frame: float = field(default_factory=time.monotonic)
    usage: CameraUsage = field(default_factory=CameraUsage)
    published_levels: list[QosLevel] | None = None
    priced_at: float = 0.0  # monotonic
    frames_at_pricing: int = 0


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
        # The hand-off between preparing and inference: one frame at most.
        self._slot: Prepared | None = None
        self._slot_free = asyncio.Event()
        self._slot_free.set()
        self._slot_full = asyncio.Event()
        self._pace = PreparePace()
        self._results: asyncio.Queue[Inferred] = asyncio.Queue(maxsize=RESULTS_WAITING)
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

    # -- the pipeline: prepare (decode, resize) | infer | publish ----------------

    def _prepare(self, pending: PendingFrame) -> Prepared:
        """Blocking, beside the inference thread: decode and resize."""
        try:
            frame = decode_jpeg(pending.raw)
        except CorruptJpegError as error:
            raise InvalidMessage(str(error)) from None
        height, width = frame.shape[:2]
        if (width, height) != (pending.width, pending.height):
            raise InvalidMessage(
                f"properties say {pending.width}x{pending.height}, the JPEG is {width}x{height}"
            )
        config = self.config_of(pending.camera)
        return Prepared(pending, frame, self._detector.preprocess(frame), config)

    async def prepare_frames(self, stop: asyncio.Event) -> None:
        """Take the latest frame just in time: when the slot is free and the
        model is about `prepare_ms` from done, so the frame decoded now is the
        newest there is when the model wants it (latest wins, still)."""
        while not stop.is_set():
            if not await wait_set(self._slot_free, IDLE_CHECK_S):
                continue
            lead_s = self._pace.wait_before_prepare_s(time.monotonic())
            if lead_s > 0:
                await wait_set(stop, lead_s)
            pending = await self._mailbox.take(IDLE_CHECK_S)
            if pending is None:
                continue
            started = time.perf_counter()
            try:
                prepared = await asyncio.to_thread(self._prepare, pending)
            except InvalidMessage as error:
                await self._door.dead_letter(pending.topic, pending.raw, str(error))
                continue
            self._pace.prepared(time.perf_counter() - started)
            self._slot = prepared
            self._slot_free.clear()
            self._slot_full.set()

    async def infer_frames(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not await wait_set(self._slot_full, IDLE_CHECK_S) or self._slot is None:
                continue
            prepared, self._slot = self._slot, None
            self._slot_full.clear()
            self._slot_free.set()  # the next frame is decoded while this one runs
            pending, config = prepared.pending, prepared.config
            started = time.perf_counter()
            self._pace.inference_started(time.monotonic())
            found = await asyncio.to_thread(
                self._detector.infer,
                prepared.tensor,
                pending.width,
                pending.height,
                config.detection_min_score,
            )
            inference_s = time.perf_counter() - started
            self._pace.inferred(inference_s)
            # Bounded: a publisher that falls behind holds the model back.
            await self._results.put(Inferred(prepared, found, inference_s * 1000))

    async def publish_results(self, stop: asyncio.Event) -> None:
        while not (stop.is_set() and self._results.empty()):
            try:
                inferred = await asyncio.wait_for(self._results.get(), IDLE_CHECK_S)
            except TimeoutError:
                self._forget_silent_cameras()
                continue
            found = await asyncio.to_thread(self._with_crops, inferred)
            await self._publish(inferred.prepared.pending, found)
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
        [stage.prepare_frames, stage.infer_frames, stage.publish_results, summaries],
        stop=stop,
    )
