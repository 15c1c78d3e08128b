"""Settings of bandwidth-allocator: start-up values of its runtime config,
plus limits that only a restart changes."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.envelope import Model
from schemas.qos import ANALYTIC_NAME_PATTERN
from services.bandwidth_allocator.solvers import FPTAS_DEFAULT_EPS, SOLVERS
from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings

BudgetSource = Literal["fixed", "measured"]


def _known_solver(name: str) -> str:
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; solvers: {', '.join(SOLVERS)}")
    return name


class AllocatorConfig(Model):
    """What an operator may change at run time (retained `config/bandwidth-allocator`)."""

    budget_kbps: float = Field(
        default=1000.0, ge=0, le=1e8, allow_inf_nan=False, description="the budget when fixed"
    )
    budget_source: BudgetSource = Field(
        default="fixed",
        description="fixed: budget_kbps; measured: the goodput the cloud bridge reports",
    )
    budget_floor_kbps: float = Field(
        default=16.0,
        ge=0,
        le=1e8,
        allow_inf_nan=False,
        description="measured budget never goes lower",
    )
    budget_ceiling_kbps: float = Field(
        default=10_000.0, ge=0, le=1e8, allow_inf_nan=False, description="nor higher"
    )
    solver: str = Field(default="dp", description="dp, fptas, greedy_hull, or a baseline")
    eps: float = Field(default=FPTAS_DEFAULT_EPS, gt=0, lt=1, description="FPTAS accuracy")
    weights: dict[str, float] = Field(
        default_factory=dict, description="operator weight per analytic name"
    )
    default_weight: float = Field(default=1.0, ge=0, le=1e6, allow_inf_nan=False)

    _check_solver = field_validator("solver")(_known_solver)

    @field_validator("weights")
    @classmethod
    def _valid_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        for name, weight in weights.items():
            if not re.match(ANALYTIC_NAME_PATTERN, name):
                raise ValueError(f"{name!r} is not an analytic name")
            if not (math.isfinite(weight) and 0 <= weight <= 1e6):
                raise ValueError(f"weight of {name} must be a finite number from 0 to 1e6")
        return weights

    @model_validator(mode="after")
    def _floor_below_ceiling(self) -> AllocatorConfig:
        if self.budget_floor_kbps > self.budget_ceiling_kbps:
            raise ValueError(
                f"budget_floor_kbps ({self.budget_floor_kbps}) is above "
                f"budget_ceiling_kbps ({self.budget_ceiling_kbps})"
            )
        return self

    def weight_of(self, analytic: str) -> float:
        return self.weights.get(analytic, self.default_weight)


class BandwidthAllocatorSettings(StageSettings, AllocatorConfig):
    model_config = STAGE_SETTINGS_CONFIG

    debounce_s: float = Field(
        default=0.2, ge=0, le=10, description="changes within this long make one re-solve"
    )
    max_analytics: int = Field(
        default=2000, ge=1, description="analytics kept; more levels are dead-lettered"
    )
    measured_growth: float = Field(
        default=1.25,
        ge=1,
        le=4,
        description="measured budget: factor it grows by per report while the bridge keeps up",
    )

    def startup_config(self) -> AllocatorConfig:
        return self.runtime_part(AllocatorConfig)
