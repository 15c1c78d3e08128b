"""Trace parsing and the sensor simulator of gas-replay."""

from __future__ import annotations

import contextlib
import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gas_replay.simulator import BASELINE_PPM, make_sensors
from services.gas_replay.trace import TraceError, check_trace, read_trace


def test_a_trace_replays_its_rows(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(
        "time,sensor,gas,value\n0,kitchen,co,3.5\n1.5,kitchen,co,90\n2026-11-23T10:00:00,k,lpg,100\n"
    )
    rows = list(read_trace(trace))
    assert [(r.sensor, r.gas, r.value) for r in rows][:2] == [
        ("kitchen", "co", 3.5),
        ("kitchen", "co", 90.0),
    ]
    assert rows[2].time > 1e9


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("when,sensor,gas,value\n", "header"),
        ("time,sensor,gas,value\n0,k,radon,1\n", ":2:"),
        ("time,sensor,gas,value\n0,k,co,1\n1,k,co,-4\n", ":3:"),
        ("time,sensor,gas,value\n0,k,co,abc\n", ":2:"),
        ("time,sensor,gas,value\n5,k,co,1\n1,k,co,1\n", "backwards"),
        ("time,sensor,gas,value\n", "no rows"),
    ],
)
def test_a_bad_trace_fails_naming_the_line(tmp_path: Path, body: str, where: str) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(body)
    with pytest.raises(TraceError, match=where):
        check_trace(trace)


@given(st.text(max_size=200))
@settings(max_examples=50, deadline=None)
def test_any_text_is_a_trace_or_a_trace_error(
    tmp_path_factory: pytest.TempPathFactory, body: str
) -> None:
    trace = tmp_path_factory.mktemp("fuzz") / "t.csv"
    trace.write_text("time,sensor,gas,value\n" + body)
    with contextlib.suppress(TraceError):
        check_trace(trace)


def test_simulated_sensors_sit_at_their_baseline_and_leaks_rise_above_alarm() -> None:
    (quiet,) = make_sensors([("k", "co")], leak_rate_per_hour=0, seed=1)
    samples = [quiet.sample(t, 1.0) for t in range(600)]
    assert statistics.fmean(samples) == pytest.approx(BASELINE_PPM["co"], rel=0.3)
    assert statistics.pstdev(samples) > 0
    (leaking,) = make_sensors([("k", "co")], leak_rate_per_hour=0, seed=2)
    leaking.start_leak(0)
    peak = max(leaking.sample(t, 1.0) for t in range(120))
    assert peak > 50  # above the default CO alarm threshold
    after = [leaking.sample(t, 1.0) for t in range(600, 700)]
    assert statistics.fmean(after) < 10  # and the room airs out
