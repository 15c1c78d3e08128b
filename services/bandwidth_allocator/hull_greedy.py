"""The greedy on each analytic's upper convex hull of (upgrade cost, profit).

Not just one solver's core: its LP relaxation bound sizes the FPTAS table and
is `lp_upper_bound`, its LP price drives the DP's `bound_reduction`, and its
leftover fix-up tops up the DP's rounded answer, so it sits below `solvers`.
Works on a `levels.ReducedInstance`; no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from services.bandwidth_allocator.list_cores import climb_hull
from services.bandwidth_allocator.reduced import Floats, Ints, ReducedInstance


def _hull_increments(instance: ReducedInstance) -> tuple[Ints, Ints, Floats, Floats]:
    """Rows, columns, cost and profit steps along each analytic's upper convex
    hull of (upgrade cost, profit), sorted by falling efficiency."""
    cost, profit = instance.cost, instance.profit
    n, width = cost.shape
    keep = np.isfinite(cost)
    columns = np.broadcast_to(np.arange(width), (n, width))
    with np.errstate(invalid="ignore"):
        while True:
            before = np.maximum.accumulate(np.where(keep, columns, -1), axis=1)
            after = np.minimum.accumulate(np.where(keep, columns, width)[:, ::-1], axis=1)
            prev = np.full((n, width), -1)
            prev[:, 1:] = before[:, :-1]
            nxt = np.full((n, width), width)
            nxt[:, :-1] = after[:, ::-1][:, 1:]
            inner = keep & (prev >= 0) & (nxt < width)
            p_idx, n_idx = np.clip(prev, 0, width - 1), np.clip(nxt, 0, width - 1)
            c_prev, c_next = np.take_along_axis(cost, p_idx, 1), np.take_along_axis(cost, n_idx, 1)
            f_prev = np.take_along_axis(profit, p_idx, 1)
            f_next = np.take_along_axis(profit, n_idx, 1)
            # Below the hull: slope in < slope out (costs strictly rise, so cross-multiply).
            # Points on a hull edge stay: finer steps let the greedy fill the budget.
            below = (profit - f_prev) * (c_next - cost) < (f_next - profit) * (cost - c_prev)
            dropped = inner & below
            if not dropped.any():
                break
            keep &= ~dropped
    before = np.maximum.accumulate(np.where(keep, columns, -1), axis=1)
    rows, cols = np.nonzero(keep[:, 1:])
    cols = cols + 1
    prev_cols = before[rows, cols - 1]
    d_cost = cost[rows, cols] - cost[rows, prev_cols]
    d_profit = profit[rows, cols] - profit[rows, prev_cols]
    # Float noise must not let a later step of a row outrank an earlier one.
    efficiency = np.full((n, width), np.inf)
    with np.errstate(over="ignore"):  # a near-free upgrade is infinitely efficient: first
        efficiency[rows, cols] = d_profit / d_cost
    efficiency = np.minimum.accumulate(efficiency, axis=1)[rows, cols]
    order = np.lexsort((cols, rows, -efficiency))
    return rows[order], cols[order], d_cost[order], d_profit[order]


class HullGreedy(NamedTuple):
    columns: Ints  # the greedy's level per analytic (instance columns)
    lp_bound: float  # the LP relaxation's upgrade profit: no choice scores more
    price: float  # profit per kbit/s of the LP's break increment (0: everything fits)


def greedy_columns(instance: ReducedInstance) -> HullGreedy:
    """Greedy on hull increments, then spend what is left; also the LP bound
    and the LP's price of a kbit/s."""
    cost, profit = instance.cost, instance.profit
    n = cost.shape[0]
    rows, cols, d_cost, d_profit = _hull_increments(instance)
    spare, slack = instance.spare, instance.slack
    # LP relaxation: whole increments in efficiency order, then a fraction of the
    # next; over spare + slack so that it bounds whatever a solver may pick.
    spent = np.cumsum(d_cost)
    limit = spare + slack
    whole = int(np.searchsorted(spent, limit, side="right"))
    lp_bound = float(d_profit[:whole].sum())
    price = 0.0
    if whole < len(d_cost):
        used = float(spent[whole - 1]) if whole else 0.0
        lp_bound += float(d_profit[whole]) * (limit - used) / float(d_cost[whole])
        price = float(d_profit[whole]) / float(d_cost[whole])
    steps = zip(rows.tolist(), cols.tolist(), d_cost.tolist(), strict=True)
    level, left = climb_hull(n, steps, spare, slack)
    columns: Ints = np.array(level, dtype=np.int64)
    spend_leftover(instance, columns, left)
    # A single large upgrade can beat the greedy (the classic 1/2 guarantee).
    fits = np.where(cost <= spare + slack, profit, -np.inf)
    flat = int(fits.argmax())
    row_of_best, col_of_best = divmod(flat, cost.shape[1])
    rows_all = np.arange(n)
    if fits[row_of_best, col_of_best] > profit[rows_all, columns].sum():
        columns = np.zeros(n, dtype=np.int64)
        columns[row_of_best] = col_of_best
        spend_leftover(instance, columns, spare - float(cost[row_of_best, col_of_best]))
    return HullGreedy(columns, lp_bound, price)


def spend_leftover(instance: ReducedInstance, columns: Ints, left: float) -> None:
    """Fix-up: repeatedly take the best-gain level switch the leftover pays for."""
    cost, profit = instance.cost, instance.profit
    rows = np.arange(cost.shape[0])
    for _ in range(cost.size):
        extra = cost - cost[rows, columns][:, None]
        gain = profit - profit[rows, columns][:, None]
        with np.errstate(invalid="ignore"):
            gain = np.where((extra <= left + instance.slack) & (gain > 1e-12), gain, -np.inf)
        flat = int(gain.argmax())
        row, col = divmod(flat, cost.shape[1])
        if not np.isfinite(gain[row, col]):
            return
        left -= float(extra[row, col])
        columns[row] = col
