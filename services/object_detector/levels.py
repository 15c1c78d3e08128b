"""The QoS levels the detector offers per camera: result rate x snapshots.

Utility comes from the video profile (`video_levels.json`, written by
`python -m profiling.video`; see there for how
it is measured). Cost is measured live from what this camera's analysis
really produces: the mean size of its detections messages times the rate,
plus its events, plus — with snapshots — the mean snapshot size times the
rate of `new` events. Until a camera has shown enough events, the profile's
event rate and snapshot size stand in for them.

The rate is priced in full even when the camera sends fewer frames: the
camera's fps is the allocator's own choice, and pricing the detector from it
would tie the two analytics' costs together (each re-solve re-pricing the
other). Like the camera's motion-gate-off pricing, this is the worst case.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, model_validator

from schemas.analytics import DetectorKnobParams
from schemas.envelope import Model
from schemas.qos import QosLevel
from services.media.video_profile import VideoProfile

# Fewer events than this say little about a camera's event rate.
MIN_EVENTS_MEASURED = 3
# Levels are re-priced when a cost moved by more than this share.
REPRICE_CHANGE = 0.25


@dataclass
class CameraUsage:
    """What one camera's analysis has produced so far (sizes on the wire)."""

    frames: int = 0
    first_ts: float | None = None
    last_ts: float = 0.0
    detection_bytes: int = 0
    events: int = 0
    event_bytes: int = 0
    new_events: int = 0
    snapshots: int = 0
    snapshot_bytes: int = 0

    def observe_frame(self, capture_ts: float, detections_bytes: int) -> None:
        self.frames += 1
        if self.first_ts is None:
            self.first_ts = capture_ts
        self.last_ts = max(self.last_ts, capture_ts)
        self.detection_bytes += detections_bytes

    def observe_event(self, kind: str, size: int) -> None:
        self.events += 1
        self.event_bytes += size
        self.new_events += kind == "new"

    def observe_snapshot(self, size: int) -> None:
        self.snapshots += 1
        self.snapshot_bytes += size

    @property
    def seconds(self) -> float:
        return self.last_ts - self.first_ts if self.first_ts is not None else 0.0


def price_levels(
    usage: CameraUsage, profile: VideoProfile, shares: DetectorUtilityShares
) -> list[QosLevel]:
    """One level per profiled row, priced from `usage` (needs >= 2 frames),
    scored with the operator's `shares` of the row's measured qualities."""
    seconds = max(usage.seconds, 1e-3)
    detections_bytes = usage.detection_bytes / max(1, usage.frames)
    costs = profile.detector_costs
    if usage.events >= MIN_EVENTS_MEASURED:
        events_bits_per_s = usage.event_bytes * 8 / seconds
        new_per_s = usage.new_events / seconds
    else:
        events_bits_per_s = costs.event_bytes * costs.events_per_s * 8
        new_per_s = costs.new_events_per_s
    snapshot_bytes = (
        usage.snapshot_bytes / usage.snapshots if usage.snapshots else costs.snapshot_bytes
    )
    levels = []
    for row in profile.detector:
        bits = detections_bytes * 8 * row.result_rate + events_bits_per_s
        if row.snapshots:
            bits += snapshot_bytes * 8 * new_per_s
        mode = "snapshots" if row.snapshots else "results"
        levels.append(
            QosLevel(
                name=f"{row.result_rate:g}hz-{mode}",
                params=DetectorKnobParams(
                    result_rate=row.result_rate, snapshots=row.snapshots
                ).model_dump(),
                cost_kbps=round(bits / 1000, 2),
                utility=shares.utility(row.results_quality, row.snapshot_share),
            )
        )
    return levels


def repricing_needed(published: list[QosLevel], fresh: list[QosLevel]) -> bool:
    """A cost moved by more than REPRICE_CHANGE, or a utility changed (new shares)."""
    old = {level.name: level for level in published}
    for level in fresh:
        before = old.get(level.name)
        if before is None or level.utility != before.utility:
            return True
        if abs(level.cost_kbps - before.cost_kbps) > REPRICE_CHANGE * max(before.cost_kbps, 1.0):
            return True
    return False


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
