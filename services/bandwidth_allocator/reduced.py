"""The reduced instance every numpy solver core works on (`levels.Analytic`s
made into padded arrays); `list_cores` keeps the same instance as lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.bandwidth_allocator.levels import Analytic

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ReducedInstance:
    """What every solver solves: each analytic's cheapest level is paid for
    up front, levels no better than a cheaper one and upgrades the spare
    budget could never pay for are dropped. Rows are analytics, columns the
    kept levels by rising cost."""

    cost: Floats  # upgrade cost over the cheapest level; inf past a row's last level
    profit: Floats  # weight x utility gained over the cheapest level; -inf past the end
    level_index: Ints  # column -> index into the analytic's own levels
    weights: Floats
    base_profit: float  # sum of weight x utility at the cheapest levels
    spare: float  # budget left after the cheapest levels, capped at what upgrades can use
    uncapped_spare: float  # the same, not capped: what the split baselines divide
    slack: float  # float tolerance on budget checks


def reduce_levels(analytics: Sequence[Analytic], spare: float, slack: float) -> ReducedInstance:
    n = len(analytics)
    counts = np.array([len(analytic.levels) for analytic in analytics])
    width = int(counts.max())
    points = np.array([point for analytic in analytics for point in analytic.levels])
    rows = np.repeat(np.arange(n), counts)
    cols = np.arange(len(points)) - np.repeat(np.cumsum(counts) - counts, counts)
    weights = np.array([analytic.weight for analytic in analytics], dtype=np.float64)
    cost = np.full((n, width), np.inf)
    profit = np.full((n, width), -np.inf)
    cost[rows, cols] = points[:, 0]
    profit[rows, cols] = points[:, 1] * weights[rows]
    # Rising cost, ties by falling profit: column 0 becomes the cheapest, best level.
    order = np.lexsort((-profit, cost), axis=1)
    cost = np.take_along_axis(cost, order, axis=1)
    profit = np.take_along_axis(profit, order, axis=1)
    best_before = np.maximum.accumulate(profit, axis=1)
    keep = np.ones_like(cost, dtype=bool)
    keep[:, 1:] = profit[:, 1:] > best_before[:, :-1]
    keep &= cost - cost[:, :1] <= spare + slack  # upgrades the budget could never pay for
    keep[:, 0] = True
    packed = np.argsort(~keep, axis=1, kind="stable")
    width = int(keep.sum(axis=1).max())
    packed = packed[:, :width]
    kept = np.take_along_axis(keep, packed, axis=1)
    cost = np.where(kept, np.take_along_axis(cost, packed, axis=1), np.inf)
    profit = np.where(kept, np.take_along_axis(profit, packed, axis=1), -np.inf)
    base_profit = float(profit[:, 0].sum())
    cost -= cost[:, :1]
    profit -= profit[:, :1]
    most_useful = float(np.where(kept, cost, 0.0).max(axis=1).sum())
    return ReducedInstance(
        cost=cost,
        profit=profit,
        level_index=np.take_along_axis(order, packed, axis=1).astype(np.int64),
        weights=weights,
        base_profit=base_profit,
        spare=min(spare, most_useful),
        uncapped_spare=spare,
        slack=slack,
    )
