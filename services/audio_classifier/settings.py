"""Settings of audio-classifier: start-up values of its runtime config (top-k,
classes of interest and their hysteresis), plus what only a restart changes
(the model, threads, backlog bounds)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from schemas.envelope import Model
from services.audio_classifier.sound_events import (
    DEFAULT_CLASSES_OF_INTEREST,
    SoundClassOfInterest,
)
from services.audio_classifier.yamnet import CLASS_MAP_FILE, MODEL_FILE
from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings

Label = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]


class SoundClassConfig(Model):
    """One family of AudioSet classes (display names) that becomes sound events."""

    class_names: list[str] = Field(min_length=1, max_length=50)
    enter_score: float = Field(default=0.5, gt=0, le=1, description="opens an event")
    exit_score: float = Field(default=0.3, gt=0, le=1, description="below it the event ends")
    min_patches: int = Field(default=1, ge=1, le=100, description="patches at enter_score")
    end_patches: int = Field(default=2, ge=1, le=100, description="quiet patches to end")

    @model_validator(mode="after")
    def _exit_not_above_enter(self) -> SoundClassConfig:
        if self.exit_score > self.enter_score:
            raise ValueError(
                f"exit_score ({self.exit_score}) must not exceed enter_score ({self.enter_score})"
            )
        return self

    def family(self, label: str) -> SoundClassOfInterest:
        return SoundClassOfInterest(
            label=label,
            class_names=frozenset(self.class_names),
            enter_score=self.enter_score,
            exit_score=self.exit_score,
            min_patches=self.min_patches,
            end_patches=self.end_patches,
        )


def default_classes_of_interest() -> dict[str, SoundClassConfig]:
    return {
        family.label: SoundClassConfig(
            class_names=sorted(family.class_names),
            enter_score=family.enter_score,
            exit_score=family.exit_score,
            min_patches=family.min_patches,
            end_patches=family.end_patches,
        )
        for family in DEFAULT_CLASSES_OF_INTEREST
    }


class AudioClassifierConfig(Model):
    """What an operator may change at run time (retained `config/audio-classifier`)."""

    top_k: int = Field(default=5, ge=1, le=20, description="classes published per patch")
    classes_of_interest: dict[Label, SoundClassConfig] = Field(
        default_factory=default_classes_of_interest,
        max_length=64,
        description="JSON object label -> {class_names, enter_score, ...}",
    )
    update_every_patches: int = Field(
        default=10, ge=1, le=10_000, description="an open event re-announced this often"
    )
    silent_after_s: float = Field(
        default=5.0, gt=0, le=3600, description="a mic this quiet ends its events"
    )


def config_model_for(class_names: Collection[str]) -> type[AudioClassifierConfig]:
    """The runtime-config model that also refuses class names the model lacks.

    The names are only known once the class map is read, so the check is a
    subclass built at start-up rather than a field of the static model.
    """
    known = frozenset(class_names)

    class CheckedAudioClassifierConfig(AudioClassifierConfig):
        @field_validator("classes_of_interest")
        @classmethod
        def _known_classes(cls, value: dict[str, SoundClassConfig]) -> dict[str, SoundClassConfig]:
            for label, family in value.items():
                unknown = sorted(set(family.class_names) - known)
                if unknown:
                    raise ValueError(f"{label}: not classes of this model: {unknown}")
            return value

    return CheckedAudioClassifierConfig


class AudioClassifierSettings(StageSettings, AudioClassifierConfig):
    model_config = STAGE_SETTINGS_CONFIG

    summary_period_s: float = Field(default=60.0, gt=0, description="summary/<stage> period")
    model_dir: Path = Field(
        default=Path(".cache/models/yamnet"),
        description=f"folder holding {MODEL_FILE} (+ model.data) and {CLASS_MAP_FILE}",
    )
    threads: int = Field(default=1, ge=1, le=16, description="inference threads")
    max_pending_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="audio per mic waiting for the classifier; older chunks are dropped",
    )
    max_mics: int = Field(default=64, ge=1, description="streams followed; more are dead-lettered")

    @field_validator("model_dir")
    @classmethod
    def _model_present(cls, folder: Path) -> Path:
        for name in (MODEL_FILE, CLASS_MAP_FILE):
            if not (folder / name).is_file():
                raise ValueError(f"{folder / name} is missing (run `make assets`)")
        return folder

    def startup_config(self) -> AudioClassifierConfig:
        return self.runtime_part(AudioClassifierConfig)
