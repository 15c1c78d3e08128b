"""Multiple-choice knapsack solvers: one level per analytic, maximising
sum(weight x utility) with sum(cost) <= budget.

Every solver works on the same reduced instance (`reduced.reduce_levels`):
the cheapest levels are paid for first and only upgrades are solved over.

Infeasible input: when the budget is below the sum of every analytic's
cheapest level, no choice fits. Every solver then answers
`Allocation(feasible=False, reason=...)` with each analytic at its cheapest
level (the highest-utility one among equally cheap levels): the stages keep
running at their lowest upload, and the cloud bridge's rate limit holds the
real cap. `cost_kbps` then exceeds `budget_kbps`, which the flag says.

Budget checks allow a relative float tolerance of `BUDGET_TOLERANCE`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from services.bandwidth_allocator import list_cores
from services.bandwidth_allocator.levels import (
    BUDGET_TOLERANCE,
    DP_MAX_STEPS,
    DP_MIN_STEPS,
    DP_WORK_CELLS,
    FPTAS_DEFAULT_EPS,
    MAX_TABLE_CELLS,
    Analytic,
    Rule,
    dp_steps,
)

__all__ = [  # the knobs' definitions live in `levels`; solvers answer for them too
    "BUDGET_TOLERANCE",
    "DP_MAX_STEPS",
    "DP_MIN_STEPS",
    "DP_WORK_CELLS",
    "FPTAS_DEFAULT_EPS",
    "MAX_TABLE_CELLS",
    "SOLVERS",
    "Allocation",
    "Solver",
    "dp_steps",
    "lp_upper_bound",
    "solve_dp",
    "solve_equal_split",
    "solve_fptas",
    "solve_greedy_hull",
    "solve_weighted_split",
]
# Instances with at most this many levels in all are solved on lists
# (`list_cores`): numpy is not even imported, which keeps the allocator's
# resident memory ~18 MB lower on a gateway of a few cameras, microphones and
# sensors. Larger ones go to the vectorised `numpy_cores`. Both run the same
# algorithm and give the same answers (tests/unit/test_allocator_list_cores.py).
LIST_CORES_MAX_LEVELS = 64


@dataclass(frozen=True, slots=True)
class Allocation:
    """A solver's answer. `choices[i]` indexes `analytics[i]`'s own levels."""

    solver: str
    analytics: tuple[str, ...]
    choices: tuple[int, ...]
    total_utility: float  # sum of weight x utility over the chosen levels
    cost_kbps: float
    budget_kbps: float
    feasible: bool
    reason: str = ""
    resolution_kbps: float | None = None  # DP budget cell; None when not discretised
    solve_seconds: float = 0.0

    def choice_by_analytic(self) -> dict[str, int]:
        return dict(zip(self.analytics, self.choices, strict=True))


def _cores(analytics: Sequence[Analytic]) -> Callable[..., tuple[list[int], float | None]]:
    if sum(len(analytic.levels) for analytic in analytics) <= LIST_CORES_MAX_LEVELS:
        return list_cores.choose
    from services.bandwidth_allocator import numpy_cores

    return numpy_cores.choose


def _solve(
    solver: str, analytics: Sequence[Analytic], budget_kbps: float, rule: Rule
) -> Allocation:
    if math.isnan(budget_kbps):
        raise ValueError("budget_kbps is NaN")
    started = time.perf_counter()
    names = tuple(analytic.name for analytic in analytics)
    cheapest = math.fsum(min(cost for cost, _ in analytic.levels) for analytic in analytics)
    slack = BUDGET_TOLERANCE * max(1.0, abs(cheapest))
    if budget_kbps < cheapest - slack:
        reason = (
            f"budget {budget_kbps:g} kbit/s is below the {cheapest:g} kbit/s the cheapest "
            "levels need; every analytic runs at its cheapest level"
        )
        feasible = False
    else:
        reason, feasible = "", True
    resolution: float | None = None
    if not analytics:
        chosen: list[int] = []
    else:
        # Within the slack the spare may be a hair below 0; the slack is spent once.
        spare = budget_kbps - cheapest if feasible else 0.0
        chosen, resolution = _cores(analytics)(
            analytics, spare, slack, rule if feasible else Rule("cheapest")
        )
    picked = [analytic.levels[index] for analytic, index in zip(analytics, chosen, strict=True)]
    return Allocation(
        solver=solver,
        analytics=names,
        choices=tuple(chosen),
        total_utility=math.fsum(
            a.weight * level.utility for a, level in zip(analytics, picked, strict=True)
        ),
        cost_kbps=math.fsum(level.cost_kbps for level in picked),
        budget_kbps=budget_kbps,
        feasible=feasible,
        reason=reason,
        resolution_kbps=resolution,
        solve_seconds=time.perf_counter() - started,
    )


def solve_dp(
    analytics: Sequence[Analytic], budget_kbps: float, *, max_steps: int | None = None
) -> Allocation:
    """Exact DP over a discretised spare budget.

    First, levels that no optimal choice can use are dropped
    (`bound_reduction`); the DP runs over the analytics left with more than
    one level. With many analytics that is a small share of them.

    Resolution: when every upgrade cost is a multiple of a common unit (found
    at 0.001 kbit/s precision) that cuts the spare budget into at most
    `max_steps` cells, that unit is used and the answer is exactly optimal.
    Otherwise the cell is spare / max_steps and costs are rounded *up* to
    whole cells: the answer is optimal for the rounded costs and never
    exceeds the real budget; the real budget the rounding left unused is
    then spent by the greedy's fix-up, which can only add utility, and the
    answer is never worse than the greedy's. `resolution_kbps` reports the
    cell used (None when the reduction alone settled every analytic).
    `max_steps` defaults to `dp_steps(analytics left free)`. Time and
    memory: O(free x levels x cells), free x cells bytes.
    """
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    return _solve("dp", analytics, budget_kbps, Rule("dp", max_steps=max_steps))


def solve_fptas(
    analytics: Sequence[Analytic], budget_kbps: float, eps: float = FPTAS_DEFAULT_EPS
) -> Allocation:
    """Profit-scaling FPTAS: total utility >= (1 - eps) x OPT.

    Profits are scaled by eps x LB / n (LB: the greedy's value) and a DP finds
    the least cost per scaled profit, bounded by the LP relaxation <= 2 LB, so
    the table has O(n / eps) cells per analytic. When the greedy already
    scores (1 - eps) x the LP bound (typical with many analytics, where one
    fractional upgrade is a small share of the total), it is the answer and
    no table is built.
    """
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    return _solve("fptas", analytics, budget_kbps, Rule("fptas", eps=eps))


def solve_greedy_hull(analytics: Sequence[Analytic], budget_kbps: float) -> Allocation:
    """Greedy by incremental efficiency on each analytic's convex hull of
    (cost, utility), then the leftover is spent on the best-gain switches,
    and the result is compared with the best single upgrade."""
    return _solve("greedy_hull", analytics, budget_kbps, Rule("greedy_hull"))


def solve_weighted_split(analytics: Sequence[Analytic], budget_kbps: float) -> Allocation:
    """Baseline WA: the spare budget is split in proportion to weight (equally
    when every weight is 0)."""
    return _solve("weighted_split", analytics, budget_kbps, Rule("weighted_split"))


def solve_equal_split(analytics: Sequence[Analytic], budget_kbps: float) -> Allocation:
    """Baseline UA: the spare budget is split equally."""
    return _solve("equal_split", analytics, budget_kbps, Rule("equal_split"))


def lp_upper_bound(analytics: Sequence[Analytic], budget_kbps: float) -> float | None:
    """The LP relaxation's total utility: no choice of levels within the budget
    scores higher. None when the budget is below the cheapest levels."""
    if not analytics:
        return 0.0 if budget_kbps >= 0 else None
    cheapest = math.fsum(min(cost for cost, _ in analytic.levels) for analytic in analytics)
    slack = BUDGET_TOLERANCE * max(1.0, abs(cheapest))
    if budget_kbps < cheapest - slack:
        return None
    from services.bandwidth_allocator import numpy_cores

    return numpy_cores.lp_bound(analytics, budget_kbps - cheapest, slack)


Solver = Callable[[Sequence[Analytic], float], Allocation]
SOLVERS: Mapping[str, Solver] = MappingProxyType(
    {
        "dp": solve_dp,
        "fptas": solve_fptas,
        "greedy_hull": solve_greedy_hull,
        "weighted_split": solve_weighted_split,
        "equal_split": solve_equal_split,
    }
)
