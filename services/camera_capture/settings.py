"""Settings of camera-capture: the source (restart to change), the start-up
values of the runtime knobs, and how knobs from config and QoS combine."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from schemas.analytics import (
    CameraKnobParams,
    Fps,
    FrameHeight,
    FrameWidth,
    JpegQuality,
    KeyframeInterval,
    MotionSensitivity,
    camera_analytic,
)
from schemas.envelope import Model
from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings
from services.media.video_profile import VIDEO_PROFILE_PATH


class CaptureConfig(Model):
    """What an operator may change at run time (retained `config/camera-capture`);
    a `qos/camera.<cam>` knob (CameraKnobParams) overrides any of it."""

    fps: Fps = Field(default=10.0, description="frames captured per second")
    max_width: FrameWidth = 1280
    max_height: FrameHeight = 720
    jpeg_quality: JpegQuality = 80
    motion_enabled: bool = Field(default=False, description="publish only frames with motion")
    motion_sensitivity: MotionSensitivity = 0.5
    keyframe_interval_s: KeyframeInterval = Field(
        default=10.0, description="a static scene is still published this often"
    )
    motion_by_camera: dict[str, bool] = Field(
        default_factory=dict, description="camera -> its own `motion_enabled` (a per-camera switch)"
    )

    def for_camera(self, camera: str) -> CaptureConfig:
        """This config with `camera`'s own switches laid over."""
        if camera not in self.motion_by_camera:
            return self
        return self.model_copy(update={"motion_enabled": self.motion_by_camera[camera]})


def effective_knobs(config: CaptureConfig, knob: CameraKnobParams | None) -> CaptureConfig:
    """The config in force with every value the QoS knob sets laid over it."""
    if knob is None:
        return config
    overrides = knob.model_dump(exclude_none=True)
    return config.model_copy(update=overrides)


class CameraCaptureSettings(StageSettings, CaptureConfig):
    model_config = STAGE_SETTINGS_CONFIG

    camera: str = Field(default="cam1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    source: str = Field(
        default=".cache/media/vtest.avi",
        min_length=1,
        description="a video file, an rtsp:// or http:// URL, or a V4L2 device index (0)",
    )
    loop: bool = Field(default=True, description="a file source starts over at its end")
    file_pacing: Literal["realtime", "frames"] = Field(
        default="realtime",
        description="realtime: a file plays at its own speed and frames are skipped to "
        "match the fps knob, like a camera; frames: each tick takes the next frame",
    )
    max_frames: int = Field(default=0, ge=0, description="stop after this many; 0: never")
    publish_levels: bool = True
    levels_profile: Path = Field(
        default=VIDEO_PROFILE_PATH,
        description="measured utility per level (edgegw profile video); the grid below "
        "offers only the combinations it holds",
    )
    level_fps: tuple[float, ...] = (2.0, 5.0, 10.0)
    level_widths: tuple[int, ...] = (320, 640, 1280)
    level_qualities: tuple[int, ...] = (50, 80)

    @property
    def analytic(self) -> str:
        """The name this camera registers its QoS levels under."""
        return camera_analytic(self.camera)

    def startup_config(self) -> CaptureConfig:
        return self.runtime_part(CaptureConfig)
