"""The measured QoS table of the video analytics (`video_levels.json`).

Written by `python -m services.bandwidth_allocator.profile_video` (see there
for how each number is measured and how to regenerate it); read by
camera-capture (utility of each fps x width x quality level) and by
object-detector (utility of each result rate x snapshots level).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from schemas.envelope import Model

VIDEO_PROFILE_PATH = Path(__file__).with_name("video_levels.json")


class CameraProfiledLevel(Model):
    fps: float = Field(gt=0)
    max_width: int = Field(gt=0, description="the knob value (the frame is never upscaled)")
    max_height: int = Field(gt=0)
    width: int = Field(gt=0, description="frame width the profiled video came out at")
    jpeg_quality: int = Field(ge=1, le=100)
    utility: float = Field(ge=0, le=1)
    event_recall: float = Field(ge=0, le=1, description="reference person events also found")
    mean_iou: float = Field(ge=0, le=1, description="per reference detection, a miss counts 0")
    mean_jpeg_bytes: float = Field(ge=0)
    cost_kbps: float = Field(ge=0, description="mean JPEG bits x fps, on the profiled video")


class DetectorUtilityShares(Model):
    """How much each thing the detector sends upstream is worth to the operator.

    A detector level is scored on three measured qualities: events (the same
    at every level), the published detections (`results_quality`) and the
    verified snapshots (`snapshot_share`). How they add up is a preference,
    not a measurement, so it is config (`level_utility` of object-detector);
    the defaults value events most, then live results, then pictures.
    """

    events: float = Field(default=0.5, ge=0, le=1000)
    results: float = Field(default=0.3, ge=0, le=1000)
    snapshots: float = Field(default=0.2, ge=0, le=1000)

    @model_validator(mode="after")
    def _some_share(self) -> DetectorUtilityShares:
        if self.events + self.results + self.snapshots <= 0:
            raise ValueError("at least one of events, results, snapshots must be > 0")
        return self

    def utility(self, results_quality: float, snapshot_share: float) -> float:
        total = self.events + self.results + self.snapshots
        score = self.events + self.results * results_quality + self.snapshots * snapshot_share
        return round(score / total, 4)


class DetectorProfiledLevel(Model):
    result_rate: float = Field(gt=0, description="detections messages per second at most")
    snapshots: bool
    utility: float = Field(ge=0, le=1)
    results_quality: float = Field(
        ge=0, le=1, description="mean IoU of the latest published detections vs every frame's"
    )
    snapshot_share: float = Field(ge=0, le=1, description="new events with a verified snapshot")
    cost_kbps: float = Field(ge=0)


class DetectorCosts(Model):
    """What the detector's messages weighed on the profiled video."""

    detections_bytes: float = Field(ge=0, description="one detections message on the wire")
    snapshot_bytes: float = Field(ge=0, description="one snapshot on the wire")
    event_bytes: float = Field(ge=0, description="one event message on the wire")
    new_events_per_s: float = Field(ge=0)
    events_per_s: float = Field(ge=0, description="new + update + end")


class VideoProfile(Model):
    generated_by: str
    video: str
    frames: int = Field(gt=0)
    source_fps: float = Field(gt=0)
    reference: str
    camera: list[CameraProfiledLevel] = Field(min_length=1)
    detector: list[DetectorProfiledLevel] = Field(min_length=1)
    detector_costs: DetectorCosts
    profile_seconds: float = Field(ge=0)

    def camera_utility(self, fps: float, max_width: int, jpeg_quality: int) -> float | None:
        for row in self.camera:
            if (row.fps, row.max_width, row.jpeg_quality) == (fps, max_width, jpeg_quality):
                return row.utility
        return None


def load_video_profile(path: Path = VIDEO_PROFILE_PATH) -> VideoProfile:
    return VideoProfile.model_validate_json(path.read_bytes())
