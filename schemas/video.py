"""Camera frames' metadata, per-frame detections, motion and object events."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field

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
