"""The CLI's argument parsing and event rendering."""

from __future__ import annotations

import pytest

from services.cli.config_command import parse_assignments
from services.cli.main import build_parser
from services.cli.watch import describe_event
from services.common.runtime_config import deep_merge


def test_assignments_become_nested_json_values() -> None:
    parsed = parse_assignments(["time_window_s=30", "thresholds.co.enter=40", "trigger=count"])
    assert parsed == {"time_window_s": 30, "thresholds": {"co": {"enter": 40}}, "trigger": "count"}


@pytest.mark.parametrize("bad", ["novalue", "=3"])
def test_an_assignment_without_key_or_equals_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="key=value"):
        parse_assignments([bad])


def test_deep_merge_keeps_siblings() -> None:
    base = {"thresholds": {"co": {"enter": 50, "exit": 30}, "lpg": {"enter": 1}}, "n": 1}
    merged = deep_merge(base, {"thresholds": {"co": {"enter": 40}}})
    assert merged == {"thresholds": {"co": {"enter": 40, "exit": 30}, "lpg": {"enter": 1}}, "n": 1}
    assert base["thresholds"]["co"]["enter"] == 50  # type: ignore[index]


def test_a_gas_event_reads_like_a_sentence() -> None:
    line = describe_event(
        "edgegw/gw1/event/kitchen",
        {
            "type": "new",
            "ts": 0,
            "label": "co_high",
            "sensor": "kitchen",
            "gas": "co",
            "value": 81.25,
            "peak": 90,
            "threshold": 50,
            "severity": "critical",
            "event_id": "kitchen-co-1",
        },
    )
    for part in ("NEW", "co_high", "kitchen co=81.2", "peak 90.0", "critical", "id=kitchen-co-1"):
        assert part in line


def test_the_parser_knows_every_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "gas-average"]).stage == "gas-average"
    args = parser.parse_args(["config", "set", "gas-average", "a=1", "--wait", "2"])
    assert args.assignments == ["a=1"] and args.wait == 2
    assert parser.parse_args(["alerts", "--count", "3"]).count == 3
