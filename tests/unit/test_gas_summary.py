"""The gas summary accumulator: statistics per series and period."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.gas_average.summary import OVERFLOW_SERIES, GasSummaryAccumulator


def _taken(summary: GasSummaryAccumulator, now: float) -> tuple[float, dict[str, Any]]:
    taken = summary.take(now)
    assert taken is not None
    return taken[0], dict(taken[1])


def test_min_mean_max_per_series_and_a_fresh_period_after_take() -> None:
    summary = GasSummaryAccumulator(start_ts=100.0)
    for value in (10.0, 20.0, 60.0):
        summary.observe("kitchen", "co", value)
    summary.observe("garage", "lpg", 5.0)
    start, values = _taken(summary, 160.0)
    assert start == 100.0
    assert values["readings"] == 4
    assert values["series"] == {
        "garage/lpg": {"n": 1, "min": 5.0, "mean": 5.0, "max": 5.0},
        "kitchen/co": {"n": 3, "min": 10.0, "mean": 30.0, "max": 60.0},
    }
    assert summary.take(now=220.0) is None  # nothing came in the second period


def test_series_beyond_the_cap_share_one_row() -> None:
    summary = GasSummaryAccumulator(start_ts=0.0, max_series=2)
    for sensor in ("a", "b", "c", "d"):
        summary.observe(sensor, "co", 1.0)
    _, values = _taken(summary, 1.0)
    assert set(values["series"]) == {"a/co", "b/co", OVERFLOW_SERIES}
    assert values["series"][OVERFLOW_SERIES]["n"] == 2


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50))
def test_mean_lies_between_min_and_max(values: list[float]) -> None:
    summary = GasSummaryAccumulator(start_ts=0.0)
    for value in values:
        summary.observe("s", "co", value)
    _, taken = _taken(summary, 1.0)
    stats = taken["series"]["s/co"]
    assert stats["min"] <= stats["mean"] + 1e-3 and stats["mean"] <= stats["max"] + 1e-3
    assert stats["n"] == len(values)
