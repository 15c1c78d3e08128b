"""Levels that no optimal choice can use, found before the exact DP runs.

Why: with many analytics the hull greedy comes within a hair of the LP bound,
and a level whose best possible total falls below the greedy's is in no
choice that beats the greedy, so not in the optimum. Dropping such levels
(variable reduction, Dyer, Kayal & Walker 1984; the core of Pisinger's
minimal MCKP algorithm) leaves the DP exact and shrinks it: on the
benchmark's 1000 analytics x 10 levels, fewer than 100 analytics keep more
than one level.

The bound. For any price λ >= 0 and any choice x within the budget B,

    Σ_i p_i(x_i) <= λ·B + Σ_i max_j (p_ij - λ·c_ij) =: U

and holding analytic i at level j lowers the right side by the reduced cost
rc_ij = max_l (p_il - λ·c_il) - (p_ij - λ·c_ij). λ is the LP's price of a
kbit/s (its break increment's efficiency), where U is the LP bound. Level j
of analytic i is dropped when U - rc_ij < LB, the greedy's profit; a float
tolerance only ever keeps more, and the greedy's own levels always stay, so
the reduced instance always holds a choice as good as the greedy's.

Pure numpy on a `levels.ReducedInstance`; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.bandwidth_allocator.hull_greedy import HullGreedy
from services.bandwidth_allocator.reduced import Ints, ReducedInstance

# Relative float tolerance on the bound test, in favour of keeping a level.
KEEP_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class BoundReduction:
    """The analytics still free, as an instance of their own, and how to map back."""

    free: ReducedInstance  # surviving levels of the free analytics, rebased to column 0
    free_rows: Ints  # free row -> instance row
    free_columns: Ints  # (free row, free column) -> instance column; -1 past the end
    base_columns: Ints  # instance columns: fixed analytics' only level, free ones' cheapest

    def expand(self, chosen_free: Ints) -> Ints:
        """Instance columns for a choice on the free instance."""
        columns = self.base_columns.copy()
        if len(self.free_rows):
            picked = self.free_columns[np.arange(len(self.free_rows)), chosen_free]
            columns[self.free_rows] = picked
        return columns


def reduce_by_bounds(instance: ReducedInstance, greedy: HullGreedy) -> BoundReduction:
    cost, profit = instance.cost, instance.profit
    n = cost.shape[0]
    rows = np.arange(n)
    finite = np.isfinite(cost)
    limit = instance.spare + instance.slack
    lower = float(profit[rows, greedy.columns].sum())
    with np.errstate(invalid="ignore"):
        lagrangian = np.where(finite, profit - greedy.price * cost, -np.inf)
    best = lagrangian.max(axis=1)  # column 0 (cost 0, profit 0) keeps it >= 0
    bound = greedy.price * limit + float(best.sum())
    tolerance = KEEP_TOLERANCE * max(1.0, abs(bound))
    alive = finite & (bound - (best[:, None] - lagrangian) >= lower - tolerance)
    alive[rows, greedy.columns] = True
    counts = alive.sum(axis=1)
    # Surviving levels packed to the left, by rising cost as in the instance.
    packed = np.argsort(~alive, axis=1, kind="stable")
    base_columns: Ints = packed[:, 0].astype(np.int64)
    free_rows: Ints = np.nonzero(counts > 1)[0].astype(np.int64)
    base_cost = float(cost[rows, base_columns].sum())
    width = int(counts.max()) if n else 1
    kept = np.take_along_axis(alive, packed, axis=1)[free_rows, :width]
    columns = packed[free_rows, :width]
    first = base_columns[free_rows][:, None]
    free_cost = np.where(
        kept, cost[free_rows[:, None], columns] - cost[free_rows[:, None], first], np.inf
    )
    free_profit = np.where(
        kept, profit[free_rows[:, None], columns] - profit[free_rows[:, None], first], -np.inf
    )
    # The greedy's choice is in here, so this is >= -slack; 0 then means "cheapest".
    spare = max(0.0, instance.spare - base_cost)
    free = ReducedInstance(
        cost=free_cost,
        profit=free_profit,
        level_index=np.where(kept, columns, -1).astype(np.int64),
        weights=instance.weights[free_rows],
        base_profit=0.0,
        spare=spare,
        uncapped_spare=spare,
        slack=instance.slack,
    )
    return BoundReduction(
        free=free,
        free_rows=free_rows,
        free_columns=np.where(kept, columns, -1).astype(np.int64),
        base_columns=base_columns,
    )
