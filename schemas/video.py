"""Camera frames' metadata, per-frame detections, motion and object events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import ConfigDict, Field

from schemas.envelope import Count, Envelope, EventType, Model, Name, Timestamp, TopicLevel

# MQTT 5 user properties every frame on `camera/<cam>/frame` carries.
FRAME_PROPERTIES: Final = ("seq", "capture_ts", "width", "height")
# JPEG stores width and height in 16 bits.
MAX_SIDE: Final = 65_535
Side = Annotated[int, Field(gt=0, le=MAX_SIDE)]
# A box may reach past the frame it was seen in, never far.
Pixel = Annotated[float, Field(ge=-MAX_SIDE, le=2 * MAX_SIDE)]


class Box(Model):
    """Pixels of the frame it was seen in: (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: Pixel
    y1: Pixel
    x2: Pixel
    y2: Pixel


class DetectedObject(Model):
    label: Name
    score: float = Field(ge=0, le=1)
    box: Box
    track_id: Count | None = None


class Detections(Envelope):
    camera: TopicLevel
    seq: Count
    capture_ts: Timestamp
    width: Side
    height: Side
    objects: list[DetectedObject]
    inference_ms: float = Field(ge=0, le=3_600_000)
    # Which replica processed the frame (EDGEGW_INSTANCE): with several
    # detectors on one shared subscription, who did what.
    instance: str = Field(default="", max_length=32)


# A snapshot crop rides in its detections message (base64 in the JSON).
MAX_CROP_BYTES: Final = 512 * 1024


class FoundObject(DetectedObject):
    """One detection of a detector replica; with snapshots on, its JPEG crop,
    since only the tracker knows whether the object is new."""

    # bytes in Python, base64 in JSON (both ways).
    model_config = ConfigDict(
        **Model.model_config, ser_json_bytes="base64", val_json_bytes="base64"
    )

    crop: Annotated[bytes, Field(max_length=MAX_CROP_BYTES)] | None = None


class FrameDetections(Envelope):
    """What a detector replica found in one frame, for object-tracker
    (`detections/<cam>/frame`): every processed frame, in whatever order the
    replicas finish them; the tracker puts them back in `seq` order.

    The detector also says what this camera's config and QoS knob ask of the
    frame's results (`snapshots`, `result_rate`), so the knob and the
    operator's per-camera switches stay the detector's, however many
    replicas and trackers there are. With `snapshots`, every object carries
    its crop (README, "Replicas": measured, 8x fewer bytes on the broker than
    the tracker taking the frames too).
    """

    camera: TopicLevel
    seq: Count
    capture_ts: Timestamp
    width: Side
    height: Side
    objects: list[FoundObject]
    inference_ms: float = Field(ge=0, le=3_600_000)
    instance: str = Field(default="", max_length=32)
    snapshots: bool = True
    result_rate: float = Field(default=0.0, ge=0, le=60)
    # Frames of this camera this replica dropped unstarted (latest wins) since
    # its previous result: the tracker does not wait for them.
    dropped: list[Count] = Field(default_factory=list, max_length=256)


class MotionScore(Envelope):
    camera: TopicLevel
    seq: Count
    score: float = Field(ge=0, le=1)
    motion: bool
    keyframe: bool


class ObjectEvent(Envelope):
    """A tracked object's lifecycle, in the shape Frigate users know."""

    kind: Literal["object"] = "object"
    type: EventType
    event_id: Name
    camera: TopicLevel
    label: Name
    score: float = Field(ge=0, le=1)
    top_score: float = Field(ge=0, le=1)
    box: Box
    frame_width: Side
    frame_height: Side
    current_zones: list[Name] = []
    entered_zones: list[Name] = []
    start_ts: Timestamp
    end_ts: Timestamp | None = None
    has_snapshot: bool = False
    # Capture time of the frame that caused this message: capture -> event latency.
    frame_ts: Timestamp | None = None


# Pixel geometry the detector produces and the tracker consumes (not wire
# models: the detector's output before it is a message, the tracker's input after).
@dataclass(frozen=True)
class DetectionBox:
    """An axis-aligned box in pixels: (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2

    @property
    def bottom_centre(self) -> tuple[float, float]:
        """Where an object stands: what zones are tested against."""
        return (self.x1 + self.x2) / 2, self.y2

    def iou(self, other: DetectionBox) -> float:
        inter_w = min(self.x2, other.x2) - max(self.x1, other.x1)
        inter_h = min(self.y2, other.y2) - max(self.y1, other.y1)
        if inter_w <= 0 or inter_h <= 0:
            return 0.0
        intersection = inter_w * inter_h
        union = self.area + other.area - intersection
        return intersection / union if union > 0 else 0.0

    def as_tuple(self) -> tuple[float, float, float, float]:
        return self.x1, self.y1, self.x2, self.y2


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: DetectionBox
