"""Camera frames' metadata, per-frame detections, motion and object events."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from schemas.envelope import Envelope, EventType, Model

# MQTT 5 user properties every frame on `camera/<cam>/frame` carries.
FRAME_PROPERTIES: Final = ("seq", "capture_ts", "width", "height")


class Box(Model):
    """Pixels of the frame it was seen in: (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float


class DetectedObject(Model):
    label: str
    score: float = Field(ge=0, le=1)
    box: Box
    track_id: int | None = None


class Detections(Envelope):
    camera: str
    seq: int = Field(ge=0)
    capture_ts: float
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    objects: list[DetectedObject]
    inference_ms: float = Field(ge=0)
    # Which replica processed the frame (EDGEGW_INSTANCE): with several
    # detectors on one shared subscription, who did what.
    instance: str = Field(default="", max_length=32)


class MotionScore(Envelope):
    camera: str
    seq: int = Field(ge=0)
    score: float = Field(ge=0, le=1)
    motion: bool
    keyframe: bool


class ObjectEvent(Envelope):
    """A tracked object's lifecycle, in the shape Frigate users know."""

    kind: Literal["object"] = "object"
    type: EventType
    event_id: str
    camera: str
    label: str
    score: float = Field(ge=0, le=1)
    top_score: float = Field(ge=0, le=1)
    box: Box
    frame_width: int = Field(gt=0)
    frame_height: int = Field(gt=0)
    current_zones: list[str] = []
    entered_zones: list[str] = []
    start_ts: float
    end_ts: float | None = None
    has_snapshot: bool = False
    # Capture time of the frame that caused this message: capture -> event latency.
    frame_ts: float | None = None
