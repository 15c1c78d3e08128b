"""Settings of camera-capture: the source (restart to change), the start-up
values of the runtime knobs, and how knobs from config and QoS combine."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from schemas.envelope import Model
from services.camera_capture.video_profile import VIDEO_PROFILE_PATH
from services.common.settings import StageSettings


class CaptureConfig(Model):
    """What an operator may change at run time (retained `config/camera-capture`)."""

    fps: float = Field(default=10.0, gt=0, le=60, description="frames captured per second")
    max_width: int = Field(default=1280, ge=16, le=7680)
    max_height: int = Field(default=720, ge=16, le=4320)
    jpeg_quality: int = Field(default=80, ge=1, le=100)
    motion_enabled: bool = Field(default=False, description="publish only frames with motion")
    motion_sensitivity: float = Field(default=0.5, ge=0, le=1)
    keyframe_interval_s: float = Field(
        default=10.0, gt=0, le=3600, description="a static scene is still published this often"
    )


class KnobParams(Model):
    """The knob values a `qos/<analytic>` level may carry; each one given
    overrides the config (the allocator decides what the uplink can afford)."""

    fps: float | None = Field(default=None, gt=0, le=60)
    max_width: int | None = Field(default=None, ge=16, le=7680)
    max_height: int | None = Field(default=None, ge=16, le=4320)
    jpeg_quality: int | None = Field(default=None, ge=1, le=100)
    motion_enabled: bool | None = None
    motion_sensitivity: float | None = Field(default=None, ge=0, le=1)
    keyframe_interval_s: float | None = Field(default=None, gt=0, le=3600)


def effective_knobs(config: CaptureConfig, knob: KnobParams | None) -> CaptureConfig:
    """The config in force with every value the QoS knob sets laid over it."""
    if knob is None:
        return config
    overrides = knob.model_dump(exclude_none=True)
    return config.model_copy(update=overrides)


class CameraCaptureSettings(StageSettings):
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
    fps: float = Field(default=10.0, gt=0, le=60)
    max_width: int = Field(default=1280, ge=16, le=7680)
    max_height: int = Field(default=720, ge=16, le=4320)
    jpeg_quality: int = Field(default=80, ge=1, le=100)
    motion_enabled: bool = False
    motion_sensitivity: float = Field(default=0.5, ge=0, le=1)
    keyframe_interval_s: float = Field(default=10.0, gt=0)

    @property
    def analytic(self) -> str:
        """The name this camera registers its QoS levels under."""
        return f"camera.{self.camera}"

    def startup_config(self) -> CaptureConfig:
        return CaptureConfig.model_validate(
            self.model_dump(include=set(CaptureConfig.model_fields))
        )
