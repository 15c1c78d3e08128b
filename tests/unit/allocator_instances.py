"""Hypothesis strategies shared by the allocator's solver tests."""

from __future__ import annotations

from hypothesis import strategies as st

from services.bandwidth_allocator.levels import Analytic

ANY_UTILITY = st.floats(0, 1, allow_nan=False)


def draw_analytics(
    draw: st.DrawFn,
    count: st.SearchStrategy[int],
    cost: st.SearchStrategy[float],
    weight: st.SearchStrategy[float],
    max_levels: int,
    utility: st.SearchStrategy[float] = ANY_UTILITY,
) -> list[Analytic]:
    """`count` analytics, each with 1..max_levels levels of `cost` and `utility`
    (any by default)."""
    analytics = []
    for index in range(draw(count)):
        levels = draw(st.lists(st.tuples(cost, utility), min_size=1, max_size=max_levels))
        analytics.append(Analytic.of(f"a{index}", draw(weight), levels))
    return analytics
