"""The exact DP drops levels by Lagrangian bounds before its table: it must
stay exact on instances big enough for the reduction to bite, and the
reduction must actually settle most analytics when there are many."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.bandwidth_allocator.bound_reduction import reduce_by_bounds
from services.bandwidth_allocator.hull_greedy import greedy_columns
from services.bandwidth_allocator.levels import Analytic
from services.bandwidth_allocator.reduced import reduce_levels
from services.bandwidth_allocator.solvers import solve_dp, solve_greedy_hull
from tests.unit.allocator_instances import draw_analytics


def textbook_dp(analytics: list[Analytic], budget: int) -> float | None:
    """An independent oracle: integer costs, best value within each capacity."""
    best = np.zeros(budget + 1)
    for analytic in analytics:
        row = np.full(budget + 1, -np.inf)
        for cost, utility in analytic.levels:
            c = int(cost)
            if c <= budget:
                row[c:] = np.maximum(row[c:], best[: budget + 1 - c] + analytic.weight * utility)
        best = row
    return None if best[budget] == -np.inf else float(best[budget])


@st.composite
def many_analytics(draw: st.DrawFn) -> tuple[list[Analytic], int]:
    cost = st.integers(0, 60).map(float)  # integer costs, as the oracle needs
    analytics = draw_analytics(draw, st.integers(5, 40), cost, st.integers(0, 5), max_levels=6)
    cheapest = sum(int(min(c for c, _ in a.levels)) for a in analytics)
    return analytics, cheapest + draw(st.integers(0, 30 * len(analytics)))


@settings(max_examples=200, deadline=None)
@given(many_analytics())
def test_reduced_dp_equals_a_textbook_dp(case: tuple[list[Analytic], int]) -> None:
    analytics, budget = case
    expected = textbook_dp(analytics, budget)
    allocation = solve_dp(analytics, budget)
    assert expected is not None and allocation.feasible
    assert allocation.total_utility == pytest.approx(expected, abs=1e-9)
    assert allocation.cost_kbps <= budget + 1e-9


def concave_analytics(rng: np.random.Generator, count: int) -> list[Analytic]:
    """Integer costs on saturating curves, like the benchmark's workload."""
    analytics = []
    for index in range(count):
        top = rng.uniform(50, 400)
        costs = np.unique(np.rint(top * np.geomspace(1 / 50, 1, 10)))
        steepness = rng.uniform(2, 10)
        curve = (1 - np.exp(-steepness * costs / costs[-1])) / (1 - np.exp(-steepness))
        utility = np.clip(curve, 0.0, 1.0)
        levels = [(float(c), float(u)) for c, u in zip(costs, utility, strict=True)]
        analytics.append(Analytic.of(f"a{index}", int(rng.integers(1, 6)), levels))
    return analytics


def test_most_of_many_analytics_are_settled_and_the_answer_stays_exact() -> None:
    analytics = concave_analytics(np.random.default_rng(7), 300)
    cheapest = sum(min(c for c, _ in a.levels) for a in analytics)
    budget = int(cheapest + 0.2 * sum(max(c for c, _ in a.levels) for a in analytics))
    instance = reduce_levels(analytics, budget - cheapest, 1e-9)
    reduction = reduce_by_bounds(instance, greedy_columns(instance))
    assert len(reduction.free_rows) < 0.5 * len(analytics)
    expected = textbook_dp(analytics, budget)
    allocation = solve_dp(analytics, budget)
    assert expected is not None
    assert allocation.total_utility == pytest.approx(expected, abs=1e-9)
    assert allocation.total_utility >= solve_greedy_hull(analytics, budget).total_utility
    assert allocation.resolution_kbps == 1.0  # integer costs: the exact unit


def test_a_budget_for_everything_settles_every_analytic_without_a_table() -> None:
    analytics = concave_analytics(np.random.default_rng(8), 50)
    everything = math.fsum(max(c for c, _ in a.levels) for a in analytics)
    allocation = solve_dp(analytics, everything)
    assert allocation.resolution_kbps is None
    assert all(
        choice == len(a.levels) - 1 for a, choice in zip(analytics, allocation.choices, strict=True)
    )
