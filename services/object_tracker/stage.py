"""The async shell of object-tracker: detections of every detector replica in,
back in frame order per camera; tracks, zones, lifecycle events, snapshots
and the camera's detections (with track ids, at the knob's rate) out.

Snapshots: with a camera's snapshots on, the detector attaches the JPEG crop
of every object it finds (it cannot know which are new); the tracker
publishes the one of each `new` object. The README measures why this beats
the tracker taking the frames too (8x fewer bytes on the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from functools import partial

from schemas.topics import DETECTIONS, FRAME_DETECTIONS, OBJECT_TRACKER, SNAPSHOT
from schemas.video import (
    DetectedObject,
    Detection,
    DetectionBox,
    Detections,
    FrameDetections,
    ObjectEvent,
)
from services.common.door import InvalidMessage, MqttDoor, PublishFailed, Received
from services.common.pacing import wait_set
from services.common.periodic_summary import Tally, publish_summaries
from services.common.runtime_config import RuntimeConfig
from services.common.stage_runner import serve
from services.common.unsent_events import UnsentEvents
from services.object_tracker import events as lifecycle
from services.object_tracker.events import to_message
from services.object_tracker.frame_order import FrameOrder, Ordered
from services.object_tracker.settings import ObjectTrackerSettings, TrackerConfig
from services.object_tracker.tracker import IouTracker, TrackerStep

log = logging.getLogger(__name__)
TICK_S = 0.05  # how often held detections are checked against the window's time limit


@dataclass
class CameraState:
    tracker: IouTracker
    events: lifecycle.ObjectEventBuilder
    order: FrameOrder[FrameDetections]
    last_input: float = field(default_factory=time.monotonic)
    last_result_ts: float | None = None


class TrackerStage:
    def __init__(self, door: MqttDoor, settings: ObjectTrackerSettings) -> None:
        self._door = door
        self._settings = settings
        self.summary = Tally(time.time())
        self._unsent = UnsentEvents[ObjectEvent](
            door, lambda message: message.camera, settings.max_unsent_events, self._sent
        )
        self.config = RuntimeConfig(door, TrackerConfig, settings.startup_config())
        self.config.on_change(self._reconfigure)
        self._cameras: dict[str, CameraState] = {}
        # Released frames are tracked one batch at a time: publishing awaits,
        # and the handler and the clock must not interleave two batches.
        self._tracking = asyncio.Lock()
        params = {"camera": settings.camera} if settings.camera else {}
        door.subscribe(FRAME_DETECTIONS, self.on_detections, **params)

    # -- input -----------------------------------------------------------------

    async def on_detections(self, message: Received[FrameDetections]) -> None:
        detections = message.payload
        camera = message.params["camera"]
        if detections.camera != camera:
            raise InvalidMessage(f"camera {detections.camera!r} on the topic of {camera!r}")
        async with self._tracking:
            state = self._state_of(camera)
            state.last_input = time.monotonic()
            order = state.order
            late_before = order.late
            now = time.monotonic()
            released = order.gone(detections.dropped, now)
            released += order.push(detections.seq, detections.capture_ts, detections, now)
            if order.late > late_before:
                self._door.metrics.count("detections_late")
            await self._track(camera, state, released)

    def _state_of(self, camera: str) -> CameraState:
        state = self._cameras.get(camera)
        if state is None:
            settings, config = self._settings, self.config.current
            if len(self._cameras) >= settings.max_cameras:
                raise InvalidMessage(f"more than {settings.max_cameras} cameras")
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
                order=FrameOrder(settings.reorder_frames, settings.reorder_wait_s),
            )
            self._cameras[camera] = state
        return state

    def _reconfigure(self, config: TrackerConfig) -> None:
        for camera, state in self._cameras.items():
            state.events.reconfigure(config.zones_of(camera), config.label_filter, config.min_score)

    # -- tracking --------------------------------------------------------------

    async def _track(
        self, camera: str, state: CameraState, released: list[Ordered[FrameDetections]]
    ) -> None:
        metrics = self._door.metrics
        metrics.gauge("frames_skipped_total", sum(s.order.skipped for s in self._cameras.values()))
        for ordered in released:
            detections = ordered.item
            found = [
                Detection(o.label, o.score, DetectionBox(o.box.x1, o.box.y1, o.box.x2, o.box.y2))
                for o in detections.objects
            ]
            step = state.tracker.update(found, detections.capture_ts)
            changes = state.events.update(
                step, detections.capture_ts, detections.width, detections.height
            )
            metrics.count("frames_tracked")
            await self._publish_results(camera, state, detections, step, found)
            for change in changes:
                snapshot = None
                if change.type == "new" and detections.snapshots:
                    snapshot = self._crop(detections, found, change.box)
                await self._publish_event(change, snapshot)
            metrics.gauge("latency_ms", round((time.time() - detections.capture_ts) * 1000, 3))

    async def _publish_results(
        self,
        camera: str,
        state: CameraState,
        detections: FrameDetections,
        step: TrackerStep,
        found: list[Detection],
    ) -> None:
        """The camera's detections with their track ids, at most `result_rate`
        per second, paced on the frames' capture times."""
        rate, ts = detections.result_rate, detections.capture_ts
        if rate > 0 and state.last_result_ts is not None:
            gap = ts - state.last_result_ts
            # 5 % slack: a camera at exactly the rate must not lose every other frame to jitter.
            if 0 <= gap < 0.95 / rate:
                self._door.metrics.count("detections_throttled")
                return
        state.last_result_ts = ts
        track_of = {track.box: track.track_id for track in step.active if track.matched}
        message = Detections(
            source=OBJECT_TRACKER,
            camera=camera,
            seq=detections.seq,
            capture_ts=ts,
            width=detections.width,
            height=detections.height,
            objects=[
                DetectedObject(
                    label=obj.label,
                    score=obj.score,
                    box=obj.box,  # the crop stays here: not for every consumer
                    track_id=track_of.get(d.box),
                )
                for obj, d in zip(detections.objects, found, strict=True)
            ],
            inference_ms=detections.inference_ms,
            instance=detections.instance,
        )
        with contextlib.suppress(PublishFailed):  # QoS 0: the next frame's replaces it
            await self._door.publish(DETECTIONS, message, camera=camera)

    def _crop(
        self, detections: FrameDetections, found: list[Detection], box: DetectionBox
    ) -> bytes | None:
        """The crop the detector attached to the detection the new track took."""
        for obj, detection in zip(detections.objects, found, strict=True):
            if detection.box == box and obj.crop is not None:
                return obj.crop
        self._door.metrics.count("snapshots_without_crop")
        return None

    async def _publish_event(
        self, event: lifecycle.TrackedObjectChange, snapshot: bytes | None
    ) -> None:
        message = to_message(event, snapshot is not None)
        # COCO has labels with spaces ("traffic light"): not a topic level.
        label = event.label.replace(" ", "_")
        if snapshot is not None:
            try:  # retained, latest wins: the next new object's replaces a lost one
                await self._door.publish(SNAPSHOT, snapshot, camera=event.camera, label=label)
            except PublishFailed as error:
                self._door.metrics.count("snapshots_lost")
                log.warning("snapshot not published", extra={"error": str(error)})
        # The track has moved on: the event waits (same id) until the broker has it.
        self._unsent.extend([message])
        await self._unsent.send()

    def _sent(self, message: ObjectEvent) -> None:
        if message.type == "new":
            self.summary.add("new_objects", f"{message.camera}.{message.label}")

    # -- time ------------------------------------------------------------------

    async def keep_time(self, stop: asyncio.Event) -> None:
        """Release detections whose gap waited long enough; end quiet cameras."""
        while not stop.is_set():
            await wait_set(stop, TICK_S)
            if self._unsent and self._door.connected.is_set():
                await self._unsent.send()  # what a lost connection held back
            async with self._tracking:
                now = time.monotonic()
                for camera, state in list(self._cameras.items()):
                    await self._track(camera, state, state.order.due(now))
                    if now - state.last_input >= self._settings.camera_silent_after_s:
                        await self._end_camera(camera, state)
        # Shutting down: every open event ends, so no consumer waits forever.
        async with self._tracking:
            for camera, state in list(self._cameras.items()):
                await self._end_camera(camera, state)

    async def _end_camera(self, camera: str, state: CameraState) -> None:
        await self._track(camera, state, state.order.flush())
        ended = TrackerStep(active=(), ended=state.tracker.flush())
        for event in state.events.update(ended, time.time(), 1, 1):
            await self._publish_event(event, None)
        self._cameras.pop(camera, None)


async def run(settings: ObjectTrackerSettings, stop: asyncio.Event | None = None) -> None:
    door = MqttDoor(settings, OBJECT_TRACKER)
    stage = TrackerStage(door, settings)
    summaries = partial(
        publish_summaries, door, OBJECT_TRACKER, stage.summary, settings.summary_period_s
    )
    await serve(door, [stage.keep_time, summaries], stop=stop)
