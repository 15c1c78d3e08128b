"""The LP relaxation bound is the certificate behind the allocator bench's
ceiling (`lp_bound_vs_*`: no allocator can score more on the workload). It is
computed by the hull greedy's fractional step; here an independent LP solver
(scipy's HiGHS) solves the same relaxation from its textbook form.

The relaxation is taken after dropping every level that no feasible choice can
use (its upgrade over the analytic's cheapest level costs more than the budget
left once every cheapest level is paid): that keeps it an upper bound on every
allocation within budget, and a tighter one than the plain LP."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from services.bandwidth_allocator.levels import Analytic
from services.bandwidth_allocator.solvers import lp_upper_bound
from tests.unit.allocator_instances import draw_analytics


def usable_levels(analytics: list[Analytic], budget: float) -> list[list[tuple[float, float]]]:
    """Per analytic, the (cost, weight x utility) of the levels a choice within
    `budget` could use."""
    cheapest = [min(level.cost_kbps for level in a.levels) for a in analytics]
    spare = budget - math.fsum(cheapest)
    return [
        [
            (level.cost_kbps, a.weight * level.utility)
            for level in a.levels
            if level.cost_kbps - floor <= spare + 1e-9
        ]
        for a, floor in zip(analytics, cheapest, strict=True)
    ]


def textbook_lp(analytics: list[Analytic], budget: float) -> float | None:
    """max sum p_ij x_ij  s.t.  sum_j x_ij = 1 for each i,
    sum c_ij x_ij <= budget, 0 <= x_ij <= 1, over the usable levels.
    None when infeasible."""
    levels = usable_levels(analytics, budget)
    if any(not row for row in levels):
        return None  # not even the cheapest levels fit
    costs = [cost for row in levels for cost, _ in row]
    profits = [profit for row in levels for _, profit in row]
    one_level_each = np.zeros((len(levels), len(costs)))
    column = 0
    for index, row in enumerate(levels):
        one_level_each[index, column : column + len(row)] = 1.0
        column += len(row)
    answer = linprog(
        c=-np.asarray(profits),
        A_ub=np.asarray([costs]),
        b_ub=[budget],
        A_eq=one_level_each,
        b_eq=np.ones(len(levels)),
        bounds=(0, 1),
        method="highs",
    )
    if answer.status == 2:  # infeasible: the budget is below the cheapest levels
        return None
    assert answer.status == 0, answer.message
    return float(-answer.fun)


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[Analytic], float]:
    cost = st.floats(0, 500, allow_nan=False).map(lambda c: round(c, 3))
    weight = st.floats(0, 5, allow_nan=False).map(lambda w: round(w, 3))
    analytics = draw_analytics(draw, st.integers(1, 8), cost, weight, max_levels=6)
    cheapest = math.fsum(min(level.cost_kbps for level in a.levels) for a in analytics)
    # Budgets around the cheapest levels' sum, so both infeasible and tight cases come up.
    budget = cheapest + draw(st.floats(-50, 2000, allow_nan=False))
    return analytics, round(budget, 3)


@settings(max_examples=300, deadline=None)
@given(instances())
def test_lp_bound_equals_an_independent_lp_solver(case: tuple[list[Analytic], float]) -> None:
    analytics, budget = case
    expected = textbook_lp(analytics, budget)
    bound = lp_upper_bound(analytics, budget)
    if expected is None:
        assert bound is None
    else:
        assert bound is not None
        assert bound == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_a_hand_checked_fractional_bound() -> None:
    # Budget 11 pays both cheapest levels (1 + 1) and leaves 9: b's upgrade
    # (cost 8, gain 2 x 0.8 = 1.6) is the more efficient and taken whole, then a
    # quarter of a's (cost 4, gain 0.5): 0.1 + 0.2 + 1.6 + 0.125 = 2.025, above
    # the best real choice (b upgraded alone: 1.9).
    a = Analytic.of("a", 1.0, [(1.0, 0.1), (5.0, 0.6)])
    b = Analytic.of("b", 2.0, [(1.0, 0.1), (9.0, 0.9)])
    assert lp_upper_bound([a, b], 11.0) == pytest.approx(2.025)
    assert textbook_lp([a, b], 11.0) == pytest.approx(2.025)
    # With 6 left over the cheapest, b's upgrade can never be paid: it is not
    # part of the bound, which is then a's upgrade, whole: 0.8.
    assert lp_upper_bound([a, b], 6.0) == pytest.approx(0.8)
