"""Settings of object-detector: the model (restart to change) and the
start-up values of what an operator may change at run time. Labels, zones
and event rules are object-tracker's."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from schemas.analytics import DetectorKnobParams, ResultRate
from schemas.envelope import Model
from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings
from services.media.video_profile import VIDEO_PROFILE_PATH
from services.object_detector.levels import DetectorUtilityShares

MODELS = Path(__file__).resolve().parents[2] / ".cache" / "models"


class DetectorConfig(Model):
    """What an operator may change at run time (retained `config/object-detector`)."""

    detection_min_score: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="detections below this are neither published nor tracked",
    )
    snapshots: bool = Field(
        default=True, description="a retained JPEG crop on every `new` (object-tracker crops it)"
    )
    snapshots_by_camera: dict[str, bool] = Field(
        default_factory=dict, description="camera -> its own `snapshots` (a per-camera switch)"
    )
    detect_by_camera: dict[str, bool] = Field(
        default_factory=dict, description="camera -> false: its frames skip the model"
    )
    level_utility: DetectorUtilityShares = Field(
        default_factory=DetectorUtilityShares,
        description="what events, live results and snapshots are worth in the QoS levels",
    )
    result_rate: ResultRate = Field(
        default=0.0,
        description="detections messages per second per camera at most (object-tracker "
        "paces them; events are unaffected); 0: one per processed frame",
    )

    def for_camera(self, camera: str) -> DetectorConfig:
        """This config with `camera`'s own switches laid over."""
        if camera not in self.snapshots_by_camera:
            return self
        return self.model_copy(update={"snapshots": self.snapshots_by_camera[camera]})

    def detects(self, camera: str) -> bool:
        return self.detect_by_camera.get(camera, True)


def effective_config(config: DetectorConfig, knob: DetectorKnobParams | None) -> DetectorConfig:
    """The config in force for one camera with every value its knob sets laid over it."""
    if knob is None:
        return config
    return config.model_copy(update=knob.model_dump(exclude_none=True))


class ObjectDetectorSettings(StageSettings, DetectorConfig):
    model_config = STAGE_SETTINGS_CONFIG

    summary_period_s: float = Field(default=60.0, gt=0, description="summary/<stage> period")
    # No session kept: a replica killed without a goodbye would otherwise keep
    # its share of the frames ($share) going to its dead session until it
    # expired (measured: a third of the frames lost with 3 replicas). Nothing
    # is lost by it: the knobs are retained, sent again on every subscribe.
    session_expiry_s: int = Field(default=0, ge=0, description="0: no session kept")
    model_path: Path = MODELS / "mobilenet_ssd_v2_coco_quant_postprocess.tflite"
    labels_path: Path = MODELS / "coco_labels.txt"
    threads: int = Field(default=1, ge=1, le=16, description="interpreter threads")
    share_group: str = Field(
        default="detector",
        pattern=r"^[A-Za-z0-9_.-]{0,64}$",
        description="MQTT 5 shared subscription group; empty: every detector sees every frame",
    )
    camera: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="only this camera"
    )
    max_cameras: int = Field(default=64, ge=1, le=10_000)
    camera_silent_after_s: float = Field(
        default=10.0, gt=0, description="a camera this quiet is forgotten (its costs measured anew)"
    )
    publish_levels: bool = True
    levels_profile: Path = Field(
        default=VIDEO_PROFILE_PATH, description="measured utility per level (edgegw profile video)"
    )
    levels_after_frames: int = Field(
        default=20, ge=1, description="frames of a camera measured before its levels are priced"
    )
    levels_reprice_s: float = Field(
        default=60.0,
        gt=0,
        description="levels are re-priced from new measurements at most this often "
        "(each change makes the allocator re-solve)",
    )

    def startup_config(self) -> DetectorConfig:
        return self.runtime_part(DetectorConfig)
