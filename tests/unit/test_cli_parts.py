"""The CLI's argument parsing and event rendering."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.alerts import UplinkUsage
from services.cli.config_command import parse_assignments
from services.cli.main import build_parser
from services.cli.watch import describe_event, describe_uplink
from services.common.runtime_config import deep_merge


def test_assignments_become_nested_json_values() -> None:
    parsed = parse_assignments(["time_window_s=30", "thresholds.co.enter=40", "trigger=count"])
    assert parsed == {"time_window_s": 30, "thresholds": {"co": {"enter": 40}}, "trigger": "count"}


@pytest.mark.parametrize("bad", ["novalue", "=3"])
def test_an_assignment_without_key_or_equals_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="key=value"):
        parse_assignments([bad])


def test_deep_merge_keeps_siblings() -> None:
    base: dict[str, Any] = {
        "thresholds": {"co": {"enter": 50, "exit": 30}, "lpg": {"enter": 1}},
        "n": 1,
    }
    merged = deep_merge(base, {"thresholds": {"co": {"enter": 40}}})
    assert merged == {"thresholds": {"co": {"enter": 40, "exit": 30}, "lpg": {"enter": 1}}, "n": 1}
    assert base["thresholds"]["co"]["enter"] == 50


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


def test_the_uplink_line_shows_use_against_budget_and_each_analytics_rate() -> None:
    usage = UplinkUsage(
        source="cloud-bridge",
        budget_kbps=600.0,
        window_s=60.0,
        used_kbps=352.25,
        bytes_by_class={"snapshot": 1000},
        spool_entries=3,
        spool_bytes=900,
        cloud_connected=True,
        budget_source="allocator",
        analytic_rates_kbps={"detector.yard": 120.0, "detector.front": 240.0},
    )
    line = describe_uplink("gw1", usage)
    assert line.startswith("uplink gw1: 352.2 of 600 kbit/s (allocator), cloud up, spool 3 msgs")
    assert line.endswith("per analytic kbit/s: detector.front 240, detector.yard 120")
    down = describe_uplink("gw1", usage.model_copy(update={"cloud_connected": False}))
    assert "cloud DOWN" in down
