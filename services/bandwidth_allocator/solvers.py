"""Multiple-choice knapsack solvers: one level per analytic, maximising
sum(weight x utility) with sum(cost) <= budget.

Every solver works on the same reduced instance (`levels.reduce_levels`):
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

import numpy as np

from services.bandwidth_allocator.bound_reduction import reduce_by_bounds
from services.bandwidth_allocator.hull_greedy import greedy_columns, spend_leftover
from services.bandwidth_allocator.levels import (
    Analytic,
    Floats,
    Ints,
    ReducedInstance,
    reduce_levels,
)

BUDGET_TOLERANCE = 1e-9
# Budget cells of the DP: at most DP_MAX_STEPS, fewer for many analytics so
# that n x cells stays near DP_WORK_CELLS (time and table bytes grow with it).
DP_MAX_STEPS = 1 << 16
DP_MIN_STEPS = 1 << 12
DP_WORK_CELLS = 1 << 24
# Size cap of the solvers' choice tables (one byte per cell).
MAX_TABLE_CELLS = 100_000_000
FPTAS_DEFAULT_EPS = 0.05


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


Core = Callable[[ReducedInstance], tuple[Ints, float | None]]


def _solve(
    solver: str, analytics: Sequence[Analytic], budget_kbps: float, core: Core
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
    columns: Ints
    if not analytics:
        chosen: list[int] = []
    else:
        # Within the slack the spare may be a hair below 0; the slack is spent once.
        spare = budget_kbps - cheapest if feasible else 0.0
        instance = reduce_levels(analytics, spare, slack)
        if feasible:
            columns, resolution = core(instance)
        else:
            columns = np.zeros(len(analytics), dtype=np.int64)
        rows = np.arange(len(analytics))
        chosen = instance.level_index[rows, columns].tolist()
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


def _dp_unit(cost: Floats, spare: float, max_steps: int) -> tuple[float, bool]:
    """The budget cell: the coarsest exact one when every upgrade cost is a
    multiple of some 0.001 kbit/s unit giving at most `max_steps` cells,
    otherwise spare / max_steps (then costs are rounded up)."""
    finite = cost[np.isfinite(cost)]
    milli = finite * 1000.0
    whole = np.rint(milli)
    if np.all(np.abs(milli - whole) <= 1e-6 * np.maximum(1.0, milli)):
        common = int(np.gcd.reduce(whole.astype(np.int64)))
        unit = common / 1000.0 if common else 1.0
        if spare / unit <= max_steps:
            return unit, True
    return spare / max_steps, False


def _dp_core(instance: ReducedInstance, max_steps: int | None) -> tuple[Ints, float | None]:
    n = instance.cost.shape[0]
    if instance.spare <= 0:
        return np.zeros(n, dtype=np.int64), None
    greedy = greedy_columns(instance)
    reduction = reduce_by_bounds(instance, greedy)
    free = reduction.free
    if not len(reduction.free_rows):
        return reduction.base_columns, None  # every analytic has one level left: optimal
    steps = dp_steps(len(reduction.free_rows)) if max_steps is None else max_steps
    chosen, unit, exact = _dp_table(free, steps)
    columns = reduction.expand(chosen)
    if not exact:
        # Rounding up left real budget unused; spend it like the greedy does.
        rows = np.arange(n)
        left = instance.spare - float(instance.cost[rows, columns].sum())
        spend_leftover(instance, columns, left)
        if instance.profit[rows, greedy.columns].sum() > instance.profit[rows, columns].sum():
            columns = greedy.columns  # rounded cells can cost more than the greedy lost
    return columns, unit


def _dp_table(instance: ReducedInstance, max_steps: int) -> tuple[Ints, float, bool]:
    """The DP proper: (columns, budget cell, whether the cell is exact)."""
    cost, profit = instance.cost, instance.profit
    n = cost.shape[0]
    if instance.spare <= 0:
        return np.zeros(n, dtype=np.int64), 0.0, True
    unit, exact = _dp_unit(cost, instance.spare, max_steps)
    if exact:
        steps = math.floor(instance.spare / unit + 1e-9)
        cells = np.rint(np.where(np.isfinite(cost), cost / unit, steps + 1))
    else:
        steps = max_steps
        # Rounding up keeps every answer within the real budget.
        cells = np.ceil(np.where(np.isfinite(cost), cost / unit, steps + 1))
    weight_cells: Ints = np.minimum(cells, steps + 1).astype(np.int64)
    if n * (steps + 1) > MAX_TABLE_CELLS:
        raise ValueError(f"DP table of {n} x {steps + 1} cells is too large; lower max_steps")
    best = np.zeros(steps + 1)  # best upgrade profit within b cells, analytics so far
    choice = np.zeros((n, steps + 1), dtype=np.uint8)
    reach = np.zeros(n, dtype=np.int64)  # beyond reach[i] cells nothing changes
    candidate = np.empty(steps + 1)
    running = 0
    for row in range(n):
        fitting = weight_cells[row][weight_cells[row] <= steps]
        running = min(steps, running + int(fitting[-1]))
        top = running + 1
        row_best = best[:top].copy()  # column 0 costs 0 cells
        row_choice = choice[row, :top]
        for column in range(1, len(fitting)):
            w = int(fitting[column])
            np.add(best[: top - w], profit[row, column], out=candidate[w:top])
            better = candidate[w:top] > row_best[w:]
            np.copyto(row_best[w:], candidate[w:top], where=better)
            row_choice[w:][better] = column
        best[:top] = row_best
        best[top:] = row_best[-1]
        reach[row] = running
    columns = np.zeros(n, dtype=np.int64)
    cell = steps
    for row in range(n - 1, -1, -1):
        cell = min(cell, int(reach[row]))
        columns[row] = choice[row, cell]
        cell -= int(weight_cells[row, columns[row]])
    return columns, unit, exact


def _fptas_core(instance: ReducedInstance, eps: float) -> tuple[Ints, float | None]:
    cost, profit = instance.cost, instance.profit
    n, width = cost.shape
    greedy, lp_bound, _ = greedy_columns(instance)
    lower = float(profit[np.arange(n), greedy].sum())
    upgradable = int((np.isfinite(cost[:, 1:]).any(axis=1)).sum()) if width > 1 else 0
    if lower <= 0 or upgradable == 0:
        return greedy, None
    if lower >= (1 - eps) * lp_bound:
        # The LP bound is >= OPT, so the greedy is already certified within
        # (1 - eps) of it; the table would only buy what eps gives away.
        return greedy, None
    # Profits are scaled relative to `lower`, so tiny weights (down to
    # subnormal floats) cannot underflow the scale to zero.
    # Rounding each chosen profit down to a multiple of `scale` loses at most
    # upgradable x scale = eps x lower <= eps x OPT over the cheapest levels.
    scale = eps / upgradable
    relative = np.where(np.isfinite(cost), profit / lower, 0.0)
    scaled: Ints = np.where(np.isfinite(cost), np.floor(relative / scale), -1).astype(np.int64)
    # Any prefix scoring above the LP bound is infeasible, so the table stops there.
    top_score = min(int(lp_bound / lower / scale) + 1, int(scaled.max(axis=1).sum()))
    if n * (top_score + 1) > MAX_TABLE_CELLS:
        raise ValueError(f"FPTAS table of {n} x {top_score + 1} cells is too large; raise eps")
    least = np.full(top_score + 1, np.inf)  # least upgrade cost reaching exactly this score
    least[0] = 0.0
    choice = np.zeros((n, top_score + 1), dtype=np.uint8)
    candidate = np.empty(top_score + 1)
    running = 0
    for row in range(n):
        row_scores = scaled[row]
        running = min(top_score, running + int(row_scores.max()))
        top = running + 1
        row_least = least[:top].copy()
        row_choice = choice[row, :top]
        for column in range(1, width):
            s = int(row_scores[column])
            if s < 0 or s >= top:
                continue
            np.add(least[: top - s], cost[row, column], out=candidate[s:top])
            better = candidate[s:top] < row_least[s:]
            np.copyto(row_least[s:], candidate[s:top], where=better)
            row_choice[s:][better] = column
        row_least[row_least > instance.spare + instance.slack] = np.inf
        least[:top] = row_least
    score = int(np.nonzero(np.isfinite(least))[0].max())
    columns = np.zeros(n, dtype=np.int64)
    for row in range(n - 1, -1, -1):
        columns[row] = choice[row, score]
        score -= int(scaled[row, columns[row]])
    if profit[np.arange(n), greedy].sum() > profit[np.arange(n), columns].sum():
        return greedy, None  # never worse than the greedy it was bounded with
    return columns, None


def _split_core(instance: ReducedInstance, fractions: Floats) -> tuple[Ints, float | None]:
    """Each analytic takes its best level within its fraction of the spare
    budget; what a share leaves unused stays unused (the baselines' weakness)."""
    with np.errstate(invalid="ignore"):  # inf x 0 for a zero share of an unbounded budget
        shares = np.where(fractions > 0, instance.uncapped_spare * fractions, 0.0)
    fitting = instance.cost <= shares[:, None] + instance.slack
    return fitting.sum(axis=1).astype(np.int64) - 1, None


def dp_steps(analytic_count: int) -> int:
    """The DP's default number of budget cells for this many analytics."""
    return min(DP_MAX_STEPS, max(DP_MIN_STEPS, DP_WORK_CELLS // max(1, analytic_count)))


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
    return _solve("dp", analytics, budget_kbps, lambda inst: _dp_core(inst, max_steps))


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
    return _solve("fptas", analytics, budget_kbps, lambda inst: _fptas_core(inst, eps))


def solve_greedy_hull(analytics: Sequence[Analytic], budget_kbps: float) -> Allocation:
    """Greedy by incremental efficiency on each analytic's convex hull of
    (cost, utility), then the leftover is spent on the best-gain switches,
    and the result is compared with the best single upgrade."""
    return _solve(
        "greedy_hull", analytics, budget_kbps, lambda inst: (greedy_columns(inst).columns, None)
    )


def solve_weighted_split(analytics: Sequence[Analytic], budget_kbps: float) -> Allocation:
    """Baseline WA: the spare budget is split in proportion to weight (equally
    when every weight is 0)."""

    def core(instance: ReducedInstance) -> tuple[Ints, float | None]:
        total = float(instance.weights.sum())
        n = len(instance.weights)
        share = instance.weights / total if total > 0 else np.full(n, 1.0 / n)
        return _split_core(instance, share)

    return _solve("weighted_split", analytics, budget_kbps, core)


def solve_equal_split(analytics: Sequence[Analytic], budget_kbps: float) -> Allocation:
    """Baseline UA: the spare budget is split equally."""

    def core(instance: ReducedInstance) -> tuple[Ints, float | None]:
        n = len(instance.weights)
        return _split_core(instance, np.full(n, 1.0 / n))

    return _solve("equal_split", analytics, budget_kbps, core)


def lp_upper_bound(analytics: Sequence[Analytic], budget_kbps: float) -> float | None:
    """The LP relaxation's total utility: no choice of levels within the budget
    scores higher. None when the budget is below the cheapest levels."""
    if not analytics:
        return 0.0 if budget_kbps >= 0 else None
    cheapest = math.fsum(min(cost for cost, _ in analytic.levels) for analytic in analytics)
    slack = BUDGET_TOLERANCE * max(1.0, abs(cheapest))
    if budget_kbps < cheapest - slack:
        return None
    instance = reduce_levels(analytics, budget_kbps - cheapest, slack)
    return instance.base_profit + greedy_columns(instance).lp_bound


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
