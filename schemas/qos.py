"""QoS levels an analytic offers, and the knob the allocator chooses."""

from __future__ import annotations

from typing import Final, Literal, get_args

from pydantic import Field, field_validator

from schemas.envelope import TOPIC_LEVEL_PATTERN, Envelope, Int64, Kbps, Model, Name, TopicLevel

ANALYTIC_NAME_PATTERN = TOPIC_LEVEL_PATTERN
# Solvers keep a level index per table cell in one byte.
MAX_LEVELS = 64

# Where an analytic runs, hence what it uploads (seed 004's model): on the
# gateway, its results (`QosLevel.cost_kbps`); in the cloud, the raw input the
# cloud copy needs (`QosLevel.raw_cost_kbps`). The deployer publishes it per
# analytic on `deploy/hosting/<analytic>` (schemas/deploy.py, `Hosting`); an
# analytic nobody says anything about runs on the gateway (the static stages).
Hosted = Literal["gateway", "cloud"]
HOSTED: Final[tuple[Hosted, ...]] = get_args(Hosted)


class QosLevel(Model):
    """One way an analytic can run: its knob values, what it uploads, what it is worth."""

    name: str = Field(min_length=1, max_length=64)
    params: dict[str, str | Int64 | float | bool] = Field(
        default_factory=dict, description="knob values, e.g. fps, width, jpeg_quality, mode"
    )
    cost_kbps: Kbps = Field(description="upload cost in kbit/s, run on the gateway: its results")
    raw_cost_kbps: Kbps | None = Field(
        default=None,
        description="upload cost in kbit/s, run in the cloud: the raw input it needs at this "
        "level (its raw-upload model); None: the same as cost_kbps",
    )
    utility: float = Field(
        ge=0, le=1, allow_inf_nan=False, description="quality at this level, 1 = full-rate run"
    )

    def cost_hosted(self, hosted: Hosted) -> float:
        """What this level uploads when the analytic runs there."""
        if hosted == "cloud" and self.raw_cost_kbps is not None:
            return self.raw_cost_kbps
        return self.cost_kbps


def _distinct_names(levels: list[QosLevel]) -> list[QosLevel]:
    names = [level.name for level in levels]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"level names must be distinct, repeated: {', '.join(repeated)}")
    return levels


class AnalyticLevels(Model):
    """Every level one analytic offers; the allocator picks exactly one."""

    analytic: str = Field(pattern=ANALYTIC_NAME_PATTERN)
    levels: list[QosLevel] = Field(min_length=1, max_length=MAX_LEVELS)

    _check_levels = field_validator("levels")(_distinct_names)


class QosLevels(Envelope):
    """Retained on `qos/<analytic>/levels` by the stage that runs the analytic."""

    analytic: str = Field(pattern=ANALYTIC_NAME_PATTERN)
    levels: list[QosLevel] = Field(min_length=1, max_length=MAX_LEVELS)

    _check_levels = field_validator("levels")(_distinct_names)


class QosKnob(Envelope):
    """Retained on `qos/<analytic>`: the level the analytic must run at now."""

    analytic: str = Field(pattern=ANALYTIC_NAME_PATTERN)
    level: QosLevel
    plan_id: str = Field(default="", max_length=256)
    budget_kbps: Kbps | None = None


class PlanChoice(Model):
    analytic: TopicLevel
    level: Name
    cost_kbps: Kbps = Field(description="what the level costs where the analytic runs")
    hosted: Hosted = "gateway"
    utility: float = Field(ge=0, le=1)
    weight: float = Field(ge=0, le=1e6)


class QosPlan(Envelope):
    """The allocator's answer: retained on `allocator/plan` when applied, or
    on `allocator/response/<request_id>` for a dry run."""

    plan_id: str
    dry_run: bool = False
    solver: str
    budget_kbps: Kbps
    cost_kbps: float = Field(ge=0, description="may exceed the budget when infeasible")
    total_utility: float = Field(ge=0, le=1e12)
    feasible: bool
    reason: str = ""
    solve_ms: float = Field(ge=0, le=3_600_000)
    choices: list[PlanChoice]


class PlanRequest(Envelope):
    """A dry run: what would each analytic get at `budget_kbps`?"""

    request_id: TopicLevel
    budget_kbps: Kbps
    solver: str | None = None
