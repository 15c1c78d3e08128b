"""The list cores (what the allocator runs on a usual gateway, without numpy)
answer exactly what the numpy cores answer, for every solver: same levels,
same DP cell. Instances reach 12 analytics so that numpy's pairwise sums
(8 accumulators from 8 values on) are exercised too."""

from __future__ import annotations

import math
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from services.bandwidth_allocator import list_cores, numpy_cores
from services.bandwidth_allocator.levels import BUDGET_TOLERANCE, Analytic, Rule
from tests.unit.allocator_instances import draw_analytics

RULES = (
    Rule("cheapest"),
    Rule("dp"),
    Rule("dp", max_steps=7),  # coarse cells: rounds, then the leftover fix-up
    Rule("fptas"),
    Rule("fptas", eps=0.01),  # tight: builds its table
    Rule("greedy_hull"),
    Rule("weighted_split"),
    Rule("equal_split"),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Analytic], float, float]:
    """Integer, fractional or any costs; (analytics, spare, slack)."""
    unit = draw(st.sampled_from([1.0, 0.25, 0.001]))
    whole = st.integers(0, 60).map(lambda k: k * unit)
    cost = st.one_of(whole, st.floats(0, 500, allow_nan=False))
    weight = st.one_of(st.integers(0, 5).map(float), st.floats(0, 5, allow_nan=False))
    # Utilities on a grid as well: collinear levels and equal profits, where ties must break alike.
    utility = st.one_of(st.integers(0, 8).map(lambda k: k / 8), st.floats(0, 1, allow_nan=False))
    analytics = draw_analytics(draw, st.integers(1, 12), cost, weight, 6, utility)
    cheapest = math.fsum(min(c for c, _ in a.levels) for a in analytics)
    slack = BUDGET_TOLERANCE * max(1.0, cheapest)
    return analytics, draw(st.floats(0, 3000, allow_nan=False)), slack


@settings(max_examples=400, deadline=None)
@given(cases())
def test_list_cores_answer_what_numpy_cores_answer(
    case: tuple[list[Analytic], float, float],
) -> None:
    analytics, spare, slack = case
    for rule in RULES:
        assert list_cores.choose(analytics, spare, slack, rule) == numpy_cores.choose(
            analytics, spare, slack, rule
        ), rule


def test_a_usual_gateway_solves_without_loading_numpy() -> None:
    code = (
        "import sys\n"
        "from services.bandwidth_allocator.__main__ import main\n"
        "from services.bandwidth_allocator.levels import Analytic\n"
        "from services.bandwidth_allocator.solvers import SOLVERS\n"
        "camera = Analytic.of('camera.lobby', 2, [(50.0 * k, k / 8) for k in range(1, 9)])\n"
        "gas = Analytic.of('gas.a', 1, [(0.5, 0.2), (2.0, 1.0)])\n"
        "for solve in SOLVERS.values():\n"
        "    assert solve([camera, gas], 300.0).feasible\n"
        "print('numpy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
