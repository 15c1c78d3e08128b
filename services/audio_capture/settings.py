"""Settings of audio-capture: one microphone (an ALSA device) or a playlist of
sound files replayed as if a microphone heard them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from services.common.settings import StageSettings
from services.media.pcm_chunk import MAX_CHUNK_SECONDS

TOPIC_LEVEL = r"^[A-Za-z0-9_.-]{1,64}$"


class AudioCaptureSettings(StageSettings):
    mic: str = Field(default="mic1", pattern=TOPIC_LEVEL, description="the `<mic>` topic level")
    audio_files: str = Field(
        default="",
        description="WAV/OGG files to replay in order, comma separated; empty: use alsa_device",
    )
    alsa_device: str = Field(
        default="",
        validate_default=True,  # so that "neither source" is caught too
        pattern=r"^[A-Za-z0-9_.,:=-]*$",
        description="ALSA capture device for `arecord -D` (e.g. default, hw:1,0, null)",
    )
    chunk_s: float = Field(
        default=0.5, gt=0, le=MAX_CHUNK_SECONDS, description="audio per published chunk"
    )
    speed: float = Field(
        default=1.0, ge=0, description="file replay: 1 real time, 4 four times faster, 0 max"
    )
    loop: bool = Field(default=True, description="file replay: start over after the last file")
    silence_between_s: float = Field(
        default=0.0, ge=0, le=60, description="file replay: silence after each file"
    )
    max_chunks: int = Field(default=0, ge=0, description="stop after this many chunks; 0: never")
    alsa_read_timeout_s: float = Field(
        default=5.0, gt=0, description="a silent arecord is restarted after this long"
    )

    @model_validator(mode="before")
    @classmethod
    def _instance_defaults_to_mic(cls, values: Any) -> Any:
        # One capture process per mic: distinct instances keep their MQTT
        # client ids apart (the broker drops a client whose id reconnects).
        if isinstance(values, dict) and "instance" not in values:
            mic = values.get("mic")
            values = {**values, "instance": str(mic)[:32] if mic else "mic1"}
        return values

    @field_validator("audio_files")
    @classmethod
    def _files_exist(cls, value: str) -> str:
        for name in _split(value):
            if not Path(name).is_file():
                raise ValueError(f"no such file: {name}")
        return value

    @field_validator("alsa_device")
    @classmethod
    def _one_source(cls, device: str, info: ValidationInfo) -> str:
        files = str(info.data.get("audio_files", "")).strip()
        if bool(files) == bool(device):
            raise ValueError("set exactly one of audio_files and alsa_device")
        return device

    def file_paths(self) -> list[Path]:
        return [Path(name) for name in _split(self.audio_files)]


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
