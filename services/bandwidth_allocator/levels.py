"""The levels an analytic can run at, and the solver's input.

An analytic publishes its `AnalyticLevels` (retained, on `qos/<analytic>/levels`);
the allocator pairs it with the operator's weight to make an `Analytic`, the
plain, already validated input every solver takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

from schemas.qos import MAX_LEVELS, AnalyticLevels

BUDGET_TOLERANCE = 1e-9
# Budget cells of the DP: at most DP_MAX_STEPS, fewer for many analytics so
# that n x cells stays near DP_WORK_CELLS (time and table bytes grow with it).
DP_MAX_STEPS = 1 << 16
DP_MIN_STEPS = 1 << 12
DP_WORK_CELLS = 1 << 24
# Size cap of the solvers' choice tables (one byte per cell).
MAX_TABLE_CELLS = 100_000_000
FPTAS_DEFAULT_EPS = 0.05


class LevelPoint(NamedTuple):
    cost_kbps: float
    utility: float


@dataclass(frozen=True, slots=True)
class Analytic:
    """Solver input: a name, the operator's weight and the (cost, utility) of each level.

    Level order is the analytic's own; solvers answer with indexes into it.
    """

    name: str
    weight: float
    levels: tuple[LevelPoint, ...]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"{self.name}: weight must be finite and >= 0, got {self.weight}")
        if not 1 <= len(self.levels) <= MAX_LEVELS:
            raise ValueError(f"{self.name}: needs 1..{MAX_LEVELS} levels, got {len(self.levels)}")
        for index, (cost, utility) in enumerate(self.levels):
            if not (math.isfinite(cost) and cost >= 0):
                raise ValueError(f"{self.name}: level {index} cost must be finite and >= 0")
            if not (math.isfinite(utility) and 0 <= utility <= 1):
                raise ValueError(f"{self.name}: level {index} utility must be in [0, 1]")

    @classmethod
    def from_levels(cls, levels: AnalyticLevels, weight: float) -> Analytic:
        points = tuple(LevelPoint(level.cost_kbps, level.utility) for level in levels.levels)
        return cls(name=levels.analytic, weight=weight, levels=points)

    @classmethod
    def of(cls, name: str, weight: float, levels: list[tuple[float, float]]) -> Analytic:
        """Shorthand for tests and benchmarks: levels as (cost_kbps, utility) pairs."""
        return cls(name, weight, tuple(LevelPoint(cost, utility) for cost, utility in levels))


@dataclass(frozen=True, slots=True)
class Rule:
    """Which solver core to run on an instance, and its one parameter
    (`max_steps` of "dp", `eps` of "fptas"); "cheapest" is every analytic at
    its cheapest level (an infeasible budget)."""

    core: Literal["dp", "fptas", "greedy_hull", "weighted_split", "equal_split", "cheapest"]
    max_steps: int | None = None
    eps: float = FPTAS_DEFAULT_EPS


def dp_steps(analytic_count: int) -> int:
    """The DP's default number of budget cells for this many analytics."""
    return min(DP_MAX_STEPS, max(DP_MIN_STEPS, DP_WORK_CELLS // max(1, analytic_count)))
