"""Settings of gas-average: start-up values of its runtime config, plus
limits that only a restart changes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.envelope import Model
from schemas.gas import Gas
from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings


class GasThreshold(Model):
    enter: float = Field(gt=0, le=1e6, description="average at or above which an episode starts")
    exit: float = Field(ge=0, le=1e6, description="average below which it ends (hysteresis)")
    min_duration_s: float = Field(
        default=3.0, ge=0, le=86_400, description="time above `enter` first"
    )
    severity: Literal["info", "warning", "critical"] = "warning"

    @model_validator(mode="after")
    def _exit_below_enter(self) -> GasThreshold:
        if self.exit >= self.enter:
            raise ValueError(f"exit ({self.exit}) must be below enter ({self.enter})")
        return self


# Concentrations in ppm. Flammable gases alarm at ~10 % of their lower
# explosive limit (methane 5 % vol, LPG ~1.8 %, H2 4 %), as commercial
# detectors do; CO near the 50 ppm workplace limit.
DEFAULT_THRESHOLDS: dict[Gas, GasThreshold] = {
    "co": GasThreshold(enter=50, exit=30, min_duration_s=3, severity="critical"),
    "smoke": GasThreshold(enter=200, exit=120, min_duration_s=2, severity="critical"),
    "methane": GasThreshold(enter=5000, exit=3000, min_duration_s=3, severity="critical"),
    "lpg": GasThreshold(enter=1800, exit=1100, min_duration_s=3, severity="critical"),
    "co2": GasThreshold(enter=2000, exit=1500, min_duration_s=30, severity="warning"),
    "h2": GasThreshold(enter=4000, exit=2500, min_duration_s=3, severity="critical"),
    "no2": GasThreshold(enter=5, exit=3, min_duration_s=30, severity="warning"),
}


class GasAverageConfig(Model):
    """What an operator may change at run time (retained `config/gas-average`)."""

    time_window_s: float = Field(default=10.0, gt=0, le=86_400)
    count_window: int = Field(default=10, ge=1, le=100_000)
    trigger: Literal["time", "count"] = Field(
        default="time", description="which average the thresholds watch"
    )
    publish_interval_s: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="least time between two averages of one sensor; 0: every",
    )
    update_step: float = Field(
        default=0.1, ge=0, le=1000, description="relative rise of the peak that earns an `update`"
    )
    silent_after_s: float = Field(
        default=60.0, gt=0, le=86_400, description="an open episode of a sensor this quiet ends"
    )
    thresholds: dict[Gas, GasThreshold] = Field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))


class GasAverageSettings(StageSettings, GasAverageConfig):
    model_config = STAGE_SETTINGS_CONFIG

    max_series: int = Field(
        default=2000, ge=1, description="sensorxgas series kept; more are dead-lettered"
    )
    summary_period_s: float = Field(default=60.0, gt=0, description="summary/gas-average period")
    summary_max_series: int = Field(default=500, ge=1)

    def startup_config(self) -> GasAverageConfig:
        return self.runtime_part(GasAverageConfig)
