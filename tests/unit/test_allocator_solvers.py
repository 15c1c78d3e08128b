"""Multiple-choice knapsack solvers of the bandwidth allocator: brute force is
the ground truth on small instances, the DP is the reference on the rest."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.qos import AnalyticLevels, QosLevel
from services.bandwidth_allocator.levels import Analytic
from services.bandwidth_allocator.solvers import (
    SOLVERS,
    Allocation,
    lp_upper_bound,
    solve_dp,
    solve_equal_split,
    solve_fptas,
    solve_greedy_hull,
    solve_weighted_split,
)
from tests.unit.allocator_instances import draw_analytics

TOLERANCE = 1e-9


def within_budget(allocation: Allocation) -> bool:
    return allocation.cost_kbps <= allocation.budget_kbps * (1 + TOLERANCE) + TOLERANCE


def brute_force(analytics: list[Analytic], budget: float) -> float | None:
    """Best sum of weight x utility over every combination, None if none fits."""
    best: float | None = None
    for combo in itertools.product(*(range(len(a.levels)) for a in analytics)):
        cost = math.fsum(a.levels[j].cost_kbps for a, j in zip(analytics, combo, strict=True))
        if cost <= budget + TOLERANCE:
            value = math.fsum(
                a.weight * a.levels[j].utility for a, j in zip(analytics, combo, strict=True)
            )
            best = value if best is None else max(best, value)
    return best


@st.composite
def instances(draw: st.DrawFn, cost_unit: float = 1.0) -> tuple[list[Analytic], float]:
    """Small instances whose costs are multiples of `cost_unit` (DP exact there)."""
    cost = st.integers(0, 40).map(lambda k: k * cost_unit)
    analytics = draw_analytics(draw, st.integers(1, 4), cost, st.integers(0, 5), max_levels=4)
    budget = draw(st.integers(0, 120)) * cost_unit
    return analytics, budget


@st.composite
def float_instances(draw: st.DrawFn) -> tuple[list[Analytic], float]:
    """Costs with no common unit: the DP has to round."""
    cost, weight = st.floats(0, 500, allow_nan=False), st.floats(0, 5, allow_nan=False)
    analytics = draw_analytics(draw, st.integers(1, 6), cost, weight, max_levels=6)
    budget = draw(st.floats(0, 2000, allow_nan=False))
    return analytics, budget


@given(instances())
def test_dp_equals_brute_force_on_integer_costs(case: tuple[list[Analytic], float]) -> None:
    analytics, budget = case
    expected = brute_force(analytics, budget)
    allocation = solve_dp(analytics, budget)
    if expected is None:
        assert not allocation.feasible
    else:
        assert allocation.feasible
        assert allocation.total_utility == pytest.approx(expected, abs=1e-9)


@given(instances(cost_unit=0.25))
def test_dp_finds_the_exact_unit_of_fractional_costs(case: tuple[list[Analytic], float]) -> None:
    analytics, budget = case
    expected = brute_force(analytics, budget)
    allocation = solve_dp(analytics, budget)
    assert allocation.feasible == (expected is not None)
    if expected is not None:
        assert allocation.total_utility == pytest.approx(expected, abs=1e-9)


@given(instances())
def test_dp_is_at_least_every_other_solver(case: tuple[list[Analytic], float]) -> None:
    analytics, budget = case
    reference = solve_dp(analytics, budget)
    for solve in SOLVERS.values():
        other = solve(analytics, budget)
        assert other.feasible == reference.feasible
        if reference.feasible:
            assert other.total_utility <= reference.total_utility + 1e-9
    bound = lp_upper_bound(analytics, budget)
    if reference.feasible:
        assert bound is not None
        assert reference.total_utility <= bound + 1e-9


@given(instances(), st.floats(0.01, 0.9))
def test_fptas_is_within_eps_of_the_optimum(case: tuple[list[Analytic], float], eps: float) -> None:
    analytics, budget = case
    optimum = solve_dp(analytics, budget)
    approximate = solve_fptas(analytics, budget, eps)
    if optimum.feasible:
        assert approximate.total_utility >= (1 - eps) * optimum.total_utility - 1e-9


@given(float_instances(), st.integers(1, 64))
def test_every_solver_stays_within_budget(
    case: tuple[list[Analytic], float], dp_steps: int
) -> None:
    analytics, budget = case
    results = [solve(analytics, budget) for solve in SOLVERS.values()]
    results.append(solve_dp(analytics, budget, max_steps=dp_steps))  # coarse: rounds a lot
    results.append(solve_fptas(analytics, budget, 0.5))
    for allocation in results:
        if allocation.feasible:
            assert within_budget(allocation), allocation
        chosen = [a.levels[j] for a, j in zip(analytics, allocation.choices, strict=True)]
        assert allocation.cost_kbps == pytest.approx(math.fsum(p.cost_kbps for p in chosen))


@given(float_instances(), st.floats(0, 1))
def test_infeasible_budget_gives_the_cheapest_levels_and_a_reason(
    case: tuple[list[Analytic], float], fraction: float
) -> None:
    analytics, _ = case
    cheapest = math.fsum(min(c for c, _ in a.levels) for a in analytics)
    if cheapest <= 1e-6:
        return  # every analytic has a free level: no budget >= 0 is infeasible
    budget = cheapest * fraction * 0.999 - (1.0 if fraction == 0 else 0.0)
    for solve in SOLVERS.values():
        allocation = solve(analytics, budget)
        assert not allocation.feasible
        assert "below" in allocation.reason
        assert allocation.cost_kbps == pytest.approx(cheapest)
        for analytic, index in zip(analytics, allocation.choices, strict=True):
            assert analytic.levels[index].cost_kbps == min(c for c, _ in analytic.levels)
    assert lp_upper_bound(analytics, budget) is None


def two_analytics() -> list[Analytic]:
    return [
        Analytic.of("camera", 1, [(0, 0.0), (10, 0.5), (20, 1.0)]),
        Analytic.of("audio", 2, [(0, 0.0), (10, 0.8), (20, 0.9)]),
    ]


def test_hand_checked_example() -> None:
    # audio's first step (0.16 per kbit/s) beats everything, then camera's (0.05)
    # beats audio's second (0.02): both at level 1, 0.5 + 2 x 0.8 = 2.1.
    analytics = two_analytics()
    for solve in (solve_dp, solve_fptas, solve_greedy_hull, solve_equal_split):
        allocation = solve(analytics, 20)
        assert allocation.choices == (1, 1), allocation.solver
        assert allocation.total_utility == pytest.approx(2.1)
        assert allocation.cost_kbps == 20
    # WA gives camera 20/3 kbit/s, too little for its first step: 1.6.
    weighted = solve_weighted_split(analytics, 20)
    assert weighted.choices == (0, 1)
    assert weighted.total_utility == pytest.approx(1.6)


def test_greedy_falls_back_to_the_single_big_upgrade() -> None:
    # Efficiency order takes the cheap sensor first, which blocks the camera.
    analytics = [
        Analytic.of("sensor", 1, [(0, 0.0), (1, 0.1)]),
        Analytic.of("camera", 1, [(0, 0.0), (10, 0.9)]),
    ]
    assert solve_greedy_hull(analytics, 10).choices == (0, 1)
    assert solve_dp(analytics, 10).total_utility == pytest.approx(0.9)


def test_choices_index_the_levels_as_published() -> None:
    analytic = Analytic.of("gas", 1, [(30, 0.9), (5, 0.4), (30, 0.7), (0, 0.1)])
    assert solve_dp([analytic], 10).choices == (1,)
    assert solve_dp([analytic], 100).choices == (0,)
    assert solve_greedy_hull([analytic], 4).choices == (3,)


def test_unbounded_budget_takes_every_best_level() -> None:
    analytics = two_analytics()
    for solve in SOLVERS.values():
        allocation = solve(analytics, math.inf)
        assert allocation.choices == (2, 2), allocation.solver
        assert allocation.total_utility == pytest.approx(2.8)


def test_no_analytics_is_an_empty_feasible_plan() -> None:
    for solve in SOLVERS.values():
        allocation = solve([], 100)
        assert allocation.feasible
        assert allocation.choices == ()
        assert allocation.total_utility == 0


def test_dp_rounds_costs_up_and_reports_its_cell() -> None:
    # 1/3 kbit/s steps have no 0.001 kbit/s unit: the DP rounds and says so.
    analytics = [Analytic.of(f"a{i}", 1, [(0, 0), (1 / 3, 0.5), (2 / 3, 1.0)]) for i in range(3)]
    allocation = solve_dp(analytics, 1.0, max_steps=10)
    assert allocation.resolution_kbps == pytest.approx(0.1)
    assert within_budget(allocation)
    assert allocation.total_utility == pytest.approx(1.5)


def test_bad_arguments_are_refused() -> None:
    analytics = two_analytics()
    with pytest.raises(ValueError, match="NaN"):
        solve_dp(analytics, math.nan)
    with pytest.raises(ValueError, match="eps"):
        solve_fptas(analytics, 10, eps=0)
    with pytest.raises(ValueError, match="weight"):
        Analytic.of("x", -1, [(0, 0)])
    with pytest.raises(ValueError, match="utility"):
        Analytic.of("x", 1, [(0, 1.5)])


def test_level_models_validate_and_convert() -> None:
    levels = AnalyticLevels(
        analytic="cam1",
        levels=[
            QosLevel(name="results", params={"mode": "results"}, cost_kbps=2, utility=0.3),
            QosLevel(name="snap", params={"fps": 1, "snapshots": True}, cost_kbps=40, utility=0.8),
        ],
    )
    analytic = Analytic.from_levels(levels, weight=3)
    assert analytic.levels == ((2, 0.3), (40, 0.8))
    assert AnalyticLevels.model_validate_json(levels.model_dump_json()) == levels
    with pytest.raises(ValidationError, match="distinct"):
        AnalyticLevels(analytic="cam1", levels=[levels.levels[0], levels.levels[0]])
    with pytest.raises(ValidationError):
        QosLevel(name="x", cost_kbps=1, utility=1.2)
    with pytest.raises(ValidationError):
        QosLevel(name="x", cost_kbps=math.inf, utility=0.5)
    with pytest.raises(ValidationError):
        AnalyticLevels.model_validate({"analytic": "cam1", "levels": [], "extra": 1})


@settings(max_examples=30)
@given(float_instances())
def test_greedy_is_at_least_half_the_lp_bound(case: tuple[list[Analytic], float]) -> None:
    # max(greedy, best single upgrade) >= LP / 2 >= OPT / 2: the classic guarantee.
    analytics, budget = case
    bound = lp_upper_bound(analytics, budget)
    if bound is None:
        return
    greedy = solve_greedy_hull(analytics, budget)
    assert greedy.total_utility >= bound / 2 - 1e-9


def test_subnormal_weights_do_not_break_the_fptas_scale() -> None:
    """Found by hypothesis in CI: a weight of 5e-324 underflowed the FPTAS scale."""
    from services.bandwidth_allocator.levels import LevelPoint

    analytics = [
        Analytic("a0", 5e-324, (LevelPoint(0.0, 0.0), LevelPoint(1.0, 1.0))),
        Analytic("a1", 0.0, (LevelPoint(0.0, 0.0),)),
    ]
    for solve in SOLVERS.values():
        allocation = solve(analytics, 1.0)
        assert allocation.feasible and allocation.cost_kbps <= 1.0
