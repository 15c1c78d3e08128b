"""The solver cores on plain lists: `numpy_cores`' algorithm step for step,
for the few analytics of a usual gateway, so that the allocator never loads
numpy for them (`solvers.LIST_CORES_MAX_LEVELS`).

Same answers as the numpy cores, bit for bit: the same orders and ties, and
sums in numpy's pairwise order (`_np_sum`), since a float tie between two
choices must break the same way. A row holds an analytic's kept levels only
(the numpy instance pads rows with inf cost and -inf profit).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise

from services.bandwidth_allocator.levels import MAX_TABLE_CELLS, Analytic, Rule, dp_steps

INF = math.inf
# Relative float tolerance of the bound test (bound_reduction.KEEP_TOLERANCE).
KEEP_TOLERANCE = 1e-9
_PAIRWISE_BLOCK = 128  # numpy's PW_BLOCKSIZE


def _np_sum(values: Sequence[float]) -> float:
    """Sum in the order numpy's pairwise summation adds (`ndarray.sum()`)."""
    n = len(values)
    if n < 8:
        total = 0.0
        for value in values:
            total += value
        return total
    if n <= _PAIRWISE_BLOCK:
        r = list(values[:8])
        end = n - n % 8
        for start in range(8, end, 8):
            for j in range(8):
                r[j] += values[start + j]
        total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for value in values[end:]:
            total += value
        return total
    half = n // 2
    half -= half % 8
    return _np_sum(values[:half]) + _np_sum(values[half:])


@dataclass(frozen=True, slots=True)
class Rows:
    """`reduced.ReducedInstance` as lists: per analytic its kept levels by
    rising cost, rebased to the cheapest (cost 0, profit 0 in column 0)."""

    cost: list[list[float]]
    profit: list[list[float]]
    level_index: list[list[int]]
    weights: list[float]
    spare: float
    uncapped_spare: float
    slack: float

    @property
    def width(self) -> int:
        return max(len(row) for row in self.cost)


def reduce_levels(analytics: Sequence[Analytic], spare: float, slack: float) -> Rows:
    costs, profits, indexes = [], [], []
    for analytic in analytics:
        points = [(c, u * analytic.weight) for c, u in analytic.levels]
        order = sorted(range(len(points)), key=lambda j: (points[j][0], -points[j][1]))
        first_cost, first_profit = points[order[0]]
        kept, best = [order[0]], first_profit
        for j in order[1:]:
            cost, profit = points[j]
            if profit > best and cost - first_cost <= spare + slack:
                kept.append(j)
            best = max(best, profit)
        costs.append([points[j][0] - first_cost for j in kept])
        profits.append([points[j][1] - first_profit for j in kept])
        indexes.append(kept)
    most_useful = _np_sum([row[-1] for row in costs])
    return Rows(
        cost=costs,
        profit=profits,
        level_index=indexes,
        weights=[analytic.weight for analytic in analytics],
        spare=min(spare, most_useful),
        uncapped_spare=spare,
        slack=slack,
    )


def _hull_steps(rows: Rows) -> list[tuple[int, int, float, float]]:
    """(row, column, cost step, profit step) along each row's upper convex
    hull, by falling efficiency (`hull_greedy._hull_increments`)."""
    steps: list[tuple[float, int, int, float, float]] = []
    for r, (cost, profit) in enumerate(zip(rows.cost, rows.profit, strict=True)):
        hull = list(range(len(cost)))
        while True:  # drop every point below its neighbours' chord at once, until none is
            dropped = {
                hull[k]
                for k in range(1, len(hull) - 1)
                if (profit[hull[k]] - profit[hull[k - 1]]) * (cost[hull[k + 1]] - cost[hull[k]])
                < (profit[hull[k + 1]] - profit[hull[k]]) * (cost[hull[k]] - cost[hull[k - 1]])
            }
            if not dropped:
                break
            hull = [column for column in hull if column not in dropped]
        efficiency = INF
        for before, column in pairwise(hull):
            d_cost, d_profit = cost[column] - cost[before], profit[column] - profit[before]
            efficiency = min(efficiency, d_profit / d_cost if d_cost else INF)
            steps.append((-efficiency, r, column, d_cost, d_profit))
    steps.sort(key=lambda step: step[:3])
    return [(r, column, d_cost, d_profit) for _, r, column, d_cost, d_profit in steps]


@dataclass(frozen=True, slots=True)
class Greedy:
    columns: list[int]
    lp_bound: float
    price: float


def climb_hull(
    n: int, steps: Iterable[tuple[int, int, float]], spare: float, slack: float
) -> tuple[list[int], float]:
    """Take hull steps (row, column, cost) in price order while they fit; a
    row whose step does not fit takes no later step. Columns and what is left."""
    columns, blocked, left = [0] * n, [False] * n, spare
    for row, column, d_cost in steps:
        if blocked[row]:
            continue
        if d_cost <= left + slack:
            columns[row] = column
            left -= d_cost
        else:
            blocked[row] = True  # its later hull steps need this one first
    return columns, left


def greedy_columns(rows: Rows) -> Greedy:
    """`hull_greedy.greedy_columns` on lists."""
    steps = _hull_steps(rows)
    spare, slack = rows.spare, rows.slack
    spent = list(accumulate(step[2] for step in steps))
    limit = spare + slack
    whole = bisect_right(spent, limit)
    lp_bound = _np_sum([step[3] for step in steps[:whole]])
    price = 0.0
    if whole < len(steps):
        used = spent[whole - 1] if whole else 0.0
        d_cost, d_profit = steps[whole][2], steps[whole][3]
        lp_bound += d_profit * (limit - used) / d_cost
        price = d_profit / d_cost
    n = len(rows.cost)
    columns, left = climb_hull(n, ((r, c, d) for r, c, d, _ in steps), spare, slack)
    spend_leftover(rows, columns, left)
    # A single large upgrade can beat the greedy (the classic 1/2 guarantee).
    best, best_at = -INF, (0, 0)
    for r, (cost, profit) in enumerate(zip(rows.cost, rows.profit, strict=True)):
        for column, (c, p) in enumerate(zip(cost, profit, strict=True)):
            if c <= spare + slack and p > best:
                best, best_at = p, (r, column)
    if best > _profit_of(rows, columns):
        columns = [0] * n
        columns[best_at[0]] = best_at[1]
        spend_leftover(rows, columns, spare - rows.cost[best_at[0]][best_at[1]])
    return Greedy(columns, lp_bound, price)


def _profit_of(rows: Rows, columns: list[int]) -> float:
    return _np_sum([row[column] for row, column in zip(rows.profit, columns, strict=True)])


def _cost_of(rows: Rows, columns: list[int]) -> float:
    return _np_sum([row[column] for row, column in zip(rows.cost, columns, strict=True)])


def spend_leftover(rows: Rows, columns: list[int], left: float) -> None:
    """Fix-up: repeatedly take the best-gain level switch the leftover pays for."""
    for _ in range(len(rows.cost) * rows.width):
        best, best_at, best_extra = -INF, (0, 0), 0.0
        for r, (cost, profit) in enumerate(zip(rows.cost, rows.profit, strict=True)):
            here_cost, here_profit = cost[columns[r]], profit[columns[r]]
            for column, (c, p) in enumerate(zip(cost, profit, strict=True)):
                extra, gain = c - here_cost, p - here_profit
                if extra <= left + rows.slack and gain > 1e-12 and gain > best:
                    best, best_at, best_extra = gain, (r, column), extra
        if best == -INF:
            return
        left -= best_extra
        columns[best_at[0]] = best_at[1]


@dataclass(frozen=True, slots=True)
class BoundReduction:
    free: Rows  # the analytics with more than one level left, rebased
    free_rows: list[int]
    free_columns: list[list[int]]  # (free row, free column) -> instance column
    base_columns: list[int]

    def expand(self, chosen_free: list[int]) -> list[int]:
        columns = list(self.base_columns)
        for k, r in enumerate(self.free_rows):
            columns[r] = self.free_columns[k][chosen_free[k]]
        return columns


def reduce_by_bounds(rows: Rows, greedy: Greedy) -> BoundReduction:
    """`bound_reduction.reduce_by_bounds` on lists."""
    limit = rows.spare + rows.slack
    lower = _profit_of(rows, greedy.columns)
    lagrangian = [
        [p - greedy.price * c for c, p in zip(cost, profit, strict=True)]
        for cost, profit in zip(rows.cost, rows.profit, strict=True)
    ]
    best = [max(row) for row in lagrangian]
    bound = greedy.price * limit + _np_sum(best)
    tolerance = KEEP_TOLERANCE * max(1.0, abs(bound))
    alive = [
        [
            bound - (best[r] - value) >= lower - tolerance or column == greedy.columns[r]
            for column, value in enumerate(row)
        ]
        for r, row in enumerate(lagrangian)
    ]
    kept = [[column for column, ok in enumerate(row) if ok] for row in alive]
    base_columns = [row[0] for row in kept]
    free_rows = [r for r, row in enumerate(kept) if len(row) > 1]
    base_cost = _cost_of(rows, base_columns)
    spare = max(0.0, rows.spare - base_cost)
    free = Rows(
        cost=[[rows.cost[r][c] - rows.cost[r][kept[r][0]] for c in kept[r]] for r in free_rows],
        profit=[
            [rows.profit[r][c] - rows.profit[r][kept[r][0]] for c in kept[r]] for r in free_rows
        ],
        level_index=[kept[r] for r in free_rows],
        weights=[rows.weights[r] for r in free_rows],
        spare=spare,
        uncapped_spare=spare,
        slack=rows.slack,
    )
    return BoundReduction(free, free_rows, [kept[r] for r in free_rows], base_columns)


def _dp_unit(rows: Rows, max_steps: int) -> tuple[float, bool]:
    """`numpy_cores._dp_unit` on lists."""
    milli = [c * 1000.0 for row in rows.cost for c in row]
    whole = [float(round(m)) for m in milli]
    if all(abs(m - w) <= 1e-6 * max(1.0, m) for m, w in zip(milli, whole, strict=True)):
        common = math.gcd(*(int(w) for w in whole))
        unit = common / 1000.0 if common else 1.0
        if rows.spare / unit <= max_steps:
            return unit, True
    return rows.spare / max_steps, False


def _cells(cost: float, unit: float, steps: int, exact: bool) -> int:
    ratio = cost / unit
    if ratio >= steps + 1:
        return steps + 1
    return round(ratio) if exact else math.ceil(ratio)


def _dp_table(rows: Rows, max_steps: int) -> tuple[list[int], float, bool]:
    """`numpy_cores._dp_table` on lists: (columns, budget cell, exact)."""
    n = len(rows.cost)
    if rows.spare <= 0:
        return [0] * n, 0.0, True
    unit, exact = _dp_unit(rows, max_steps)
    steps = math.floor(rows.spare / unit + 1e-9) if exact else max_steps
    weight_cells = [[_cells(c, unit, steps, exact) for c in row] for row in rows.cost]
    if n * (steps + 1) > MAX_TABLE_CELLS:
        raise ValueError(f"DP table of {n} x {steps + 1} cells is too large; lower max_steps")
    best = [0.0] * (steps + 1)  # best upgrade profit within b cells, analytics so far
    choices: list[bytearray] = []
    reach: list[int] = []
    running = 0
    for r in range(n):
        fitting = [w for w in weight_cells[r] if w <= steps]
        running = min(steps, running + fitting[-1])
        top = running + 1
        row_best = best[:top]
        row_choice = bytearray(steps + 1)
        for column in range(1, len(fitting)):
            w, gain = fitting[column], rows.profit[r][column]
            for cell in range(w, top):
                candidate = best[cell - w] + gain
                if candidate > row_best[cell]:
                    row_best[cell] = candidate
                    row_choice[cell] = column
        best[:top] = row_best
        best[top:] = [row_best[-1]] * (steps + 1 - top)
        choices.append(row_choice)
        reach.append(running)
    columns = [0] * n
    cell = steps
    for r in range(n - 1, -1, -1):
        cell = min(cell, reach[r])
        columns[r] = choices[r][cell]
        cell -= weight_cells[r][columns[r]]
    return columns, unit, exact


def _dp_core(rows: Rows, max_steps: int | None) -> tuple[list[int], float | None]:
    n = len(rows.cost)
    if rows.spare <= 0:
        return [0] * n, None
    greedy = greedy_columns(rows)
    reduction = reduce_by_bounds(rows, greedy)
    if not reduction.free_rows:
        return reduction.base_columns, None  # every analytic has one level left: optimal
    steps = dp_steps(len(reduction.free_rows)) if max_steps is None else max_steps
    chosen, unit, exact = _dp_table(reduction.free, steps)
    columns = reduction.expand(chosen)
    if not exact:
        # Rounding up left real budget unused; spend it like the greedy does.
        spend_leftover(rows, columns, rows.spare - _cost_of(rows, columns))
        if _profit_of(rows, greedy.columns) > _profit_of(rows, columns):
            columns = greedy.columns  # rounded cells can cost more than the greedy lost
    return columns, unit


def _fptas_core(rows: Rows, eps: float) -> tuple[list[int], float | None]:
    """`numpy_cores._fptas_core` on lists."""
    n = len(rows.cost)
    greedy = greedy_columns(rows)
    lower = _profit_of(rows, greedy.columns)
    upgradable = sum(len(row) > 1 for row in rows.cost)
    if lower <= 0 or upgradable == 0 or lower >= (1 - eps) * greedy.lp_bound:
        return greedy.columns, None
    scale = eps / upgradable
    scaled = [[math.floor(p / lower / scale) for p in row] for row in rows.profit]
    top_score = min(int(greedy.lp_bound / lower / scale) + 1, sum(max(row) for row in scaled))
    if n * (top_score + 1) > MAX_TABLE_CELLS:
        raise ValueError(f"FPTAS table of {n} x {top_score + 1} cells is too large; raise eps")
    least = [INF] * (top_score + 1)  # least upgrade cost reaching exactly this score
    least[0] = 0.0
    choices: list[bytearray] = []
    running = 0
    for r in range(n):
        running = min(top_score, running + max(scaled[r]))
        top = running + 1
        row_least = least[:top]
        row_choice = bytearray(top_score + 1)
        for column in range(1, len(scaled[r])):
            s, cost = scaled[r][column], rows.cost[r][column]
            if s < 0 or s >= top:
                continue
            for score in range(s, top):
                candidate = least[score - s] + cost
                if candidate < row_least[score]:
                    row_least[score] = candidate
                    row_choice[score] = column
        limit = rows.spare + rows.slack
        least[:top] = [INF if value > limit else value for value in row_least]
        choices.append(row_choice)
    score = max(k for k, value in enumerate(least) if value != INF)
    columns = [0] * n
    for r in range(n - 1, -1, -1):
        columns[r] = choices[r][score]
        score -= scaled[r][columns[r]]
    if _profit_of(rows, greedy.columns) > _profit_of(rows, columns):
        return greedy.columns, None  # never worse than the greedy it was bounded with
    return columns, None


def _split_core(rows: Rows, fractions: list[float]) -> tuple[list[int], float | None]:
    shares = [rows.uncapped_spare * f if f > 0 else 0.0 for f in fractions]
    columns = [
        sum(c <= share + rows.slack for c in cost) - 1
        for cost, share in zip(rows.cost, shares, strict=True)
    ]
    return columns, None


def _weighted_fractions(rows: Rows) -> list[float]:
    total = _np_sum(rows.weights)
    n = len(rows.weights)
    return [weight / total for weight in rows.weights] if total > 0 else [1.0 / n] * n


def _run_core(rows: Rows, rule: Rule) -> tuple[list[int], float | None]:
    """The rule's core on the reduced rows: their columns, and the DP's budget cell."""
    n = len(rows.cost)
    match rule.core:
        case "cheapest":
            return [0] * n, None
        case "dp":
            return _dp_core(rows, rule.max_steps)
        case "fptas":
            return _fptas_core(rows, rule.eps)
        case "greedy_hull":
            return greedy_columns(rows).columns, None
        case "weighted_split":
            return _split_core(rows, _weighted_fractions(rows))
        case _:
            return _split_core(rows, [1.0 / n] * n)


def choose(
    analytics: Sequence[Analytic], spare: float, slack: float, rule: Rule
) -> tuple[list[int], float | None]:
    """Each analytic's chosen level (its own index) and the DP's budget cell."""
    rows = reduce_levels(analytics, spare, slack)
    columns, resolution = _run_core(rows, rule)
    return [index[column] for index, column in zip(rows.level_index, columns, strict=True)], (
        resolution
    )
