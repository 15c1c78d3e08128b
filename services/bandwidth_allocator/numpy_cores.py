"""The solver cores on numpy arrays: what the allocator runs on large
instances (thousands of analytics), where vectorised tables pay for numpy's
import. `list_cores` is the same algorithm on lists, for the few analytics of
a usual gateway; `solvers` picks one by instance size.

Each core takes a `reduced.ReducedInstance` and answers instance columns and
the DP's budget cell; `choose` maps those back to each analytic's own levels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from services.bandwidth_allocator.bound_reduction import reduce_by_bounds
from services.bandwidth_allocator.hull_greedy import greedy_columns, spend_leftover
from services.bandwidth_allocator.levels import MAX_TABLE_CELLS, Analytic, Rule, dp_steps
from services.bandwidth_allocator.reduced import Floats, Ints, ReducedInstance, reduce_levels


def choose(
    analytics: Sequence[Analytic], spare: float, slack: float, rule: Rule
) -> tuple[list[int], float | None]:
    """Each analytic's chosen level (its own index) and the DP's budget cell."""
    instance = reduce_levels(analytics, spare, slack)
    columns: Ints
    resolution: float | None = None
    if rule.core == "cheapest":
        columns = np.zeros(len(analytics), dtype=np.int64)
    elif rule.core == "dp":
        columns, resolution = _dp_core(instance, rule.max_steps)
    elif rule.core == "fptas":
        columns, resolution = _fptas_core(instance, rule.eps)
    elif rule.core == "greedy_hull":
        columns = greedy_columns(instance).columns
    elif rule.core == "weighted_split":
        columns, resolution = _weighted_split_core(instance)
    else:
        columns, resolution = _equal_split_core(instance)
    chosen: list[int] = instance.level_index[np.arange(len(analytics)), columns].tolist()
    return chosen, resolution


def lp_bound(analytics: Sequence[Analytic], spare: float, slack: float) -> float:
    """The LP relaxation's total utility within `spare` over the cheapest levels."""
    instance = reduce_levels(analytics, spare, slack)
    return instance.base_profit + greedy_columns(instance).lp_bound


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


def _weighted_split_core(instance: ReducedInstance) -> tuple[Ints, float | None]:
    total = float(instance.weights.sum())
    n = len(instance.weights)
    share = instance.weights / total if total > 0 else np.full(n, 1.0 / n)
    return _split_core(instance, share)


def _equal_split_core(instance: ReducedInstance) -> tuple[Ints, float | None]:
    n = len(instance.weights)
    return _split_core(instance, np.full(n, 1.0 / n))
