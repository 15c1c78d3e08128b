"""Settings of object-tracker: the tracker and the reorder window (restart to
change) and the start-up values of what an operator may change at run time."""

from __future__ import annotations

from pydantic import Field, model_validator

from schemas.envelope import Model
from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings
from services.object_tracker.zones import Zone


class ZoneConfig(Model):
    """A polygon in fractions of the frame (0..1), so it survives a size knob."""

    name: str = Field(min_length=1, max_length=64)
    polygon: list[tuple[float, float]] = Field(min_length=3, max_length=64)
    labels: list[str] = Field(default_factory=list, description="empty: every label")

    @model_validator(mode="after")
    def _valid_polygon(self) -> ZoneConfig:
        self.to_zone()  # raises ValueError naming the zone and the bad point
        return self

    def to_zone(self) -> Zone:
        return Zone(self.name, tuple(self.polygon), frozenset(self.labels))


class TrackerConfig(Model):
    """What an operator may change at run time (retained `config/object-tracker`).

    Whether a camera's `new` events bring a snapshot, and how many detections
    messages per second it publishes, are the detector's (its config and QoS
    knob): each detections message from a detector says so."""

    labels: list[str] = Field(
        default_factory=lambda: ["person"], description="labels that make events; empty: all"
    )
    min_score: float = Field(
        default=0.6, ge=0, le=1, description="top score a track needs before its `new` event"
    )
    zones: dict[str, list[ZoneConfig]] = Field(
        default_factory=dict, description="camera -> its zones"
    )

    def zones_of(self, camera: str) -> list[Zone]:
        return [zone.to_zone() for zone in self.zones.get(camera, [])]

    @property
    def label_filter(self) -> frozenset[str] | None:
        return frozenset(self.labels) if self.labels else None


class ObjectTrackerSettings(StageSettings, TrackerConfig):
    model_config = STAGE_SETTINGS_CONFIG

    summary_period_s: float = Field(default=60.0, gt=0, description="summary/<stage> period")
    camera: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="only this camera"
    )
    max_cameras: int = Field(default=64, ge=1, le=10_000)
    camera_silent_after_s: float = Field(
        default=10.0, gt=0, description="a camera this quiet has its open events ended"
    )
    track_iou: float = Field(default=0.2, gt=0, le=1)
    track_min_hits: int = Field(default=5, ge=1)
    track_max_misses: int = Field(default=40, ge=0)
    reorder_frames: int = Field(
        default=8, ge=1, le=1000, description="detections held per camera waiting for a gap"
    )
    reorder_wait_s: float = Field(
        default=0.5, ge=0, le=60, description="how long a gap in the frame order is waited for"
    )

    def startup_config(self) -> TrackerConfig:
        return self.runtime_part(TrackerConfig)
