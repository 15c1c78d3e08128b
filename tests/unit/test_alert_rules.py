"""Alert rules: lifecycle, dedup, minimum duration, cooldown, quiet hours, zones."""

from __future__ import annotations

from datetime import datetime
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.alert_forwarder.rules import (
    AlertRule,
    AlertRules,
    AlertRulesConfig,
    IncomingEvent,
    PublishAlert,
    SuppressedEvent,
    alert_id_for,
)

_message_numbers = count()
PARIS = ZoneInfo("Europe/Paris")


def event(type_: str = "new", ts: float = 1000.0, **fields: Any) -> IncomingEvent:
    values: dict[str, Any] = {
        "type": type_,
        "event_id": "ev1",
        "message_id": f"msg{next(_message_numbers)}",
        "source": "cam1",
        "kind": "object",
        "label": "person",
        "ts": ts,
        "start_ts": 1000.0,
    }
    values.update(fields)
    return IncomingEvent(**values)


def published(decisions: list[Any]) -> list[PublishAlert]:
    return [d for d in decisions if isinstance(d, PublishAlert)]


def reasons(decisions: list[Any]) -> list[str]:
    return [d.reason for d in decisions if isinstance(d, SuppressedEvent)]


def test_lifecycle_with_stable_id_and_sequences() -> None:
    rules = AlertRules(AlertRulesConfig())
    new = published(rules.handle(event("new", severity="warning", zones=frozenset({"door"}))))
    assert [d.action for d in new] == ["new"]
    assert new[0].alert_id == alert_id_for("cam1", "ev1")
    assert new[0].sequence == 0
    assert new[0].severity == "warning"
    # Nothing material changed: no upload.
    assert reasons(
        rules.handle(event("update", 1001, severity="warning", zones=frozenset({"door"})))
    ) == ["unchanged"]
    update = published(
        rules.handle(event("update", 1002, severity="critical", zones=frozenset({"door"})))
    )
    assert [(d.action, d.severity, d.sequence) for d in update] == [("update", "critical", 1)]
    moved = published(
        rules.handle(event("update", 1003, severity="critical", zones=frozenset({"hall"})))
    )
    assert [(d.action, d.zones, d.sequence) for d in moved] == [("update", frozenset({"hall"}), 2)]
    end = published(rules.handle(event("end", 1005, end_ts=1005.0)))
    assert [(d.action, d.end_ts, d.sequence, d.alert_id) for d in end] == [
        ("end", 1005.0, 3, new[0].alert_id)
    ]


def test_alert_id_is_stable_across_instances_and_distinct_per_source() -> None:
    first = published(AlertRules(AlertRulesConfig()).handle(event()))[0].alert_id
    again = published(AlertRules(AlertRulesConfig()).handle(event()))[0].alert_id
    other = published(AlertRules(AlertRulesConfig()).handle(event(source="cam2")))[0].alert_id
    assert first == again
    assert first != other


def test_redelivered_message_is_a_duplicate() -> None:
    rules = AlertRules(AlertRulesConfig())
    message = event()
    assert published(rules.handle(message))
    assert reasons(rules.handle(message)) == ["duplicate"]


def test_minimum_duration_waits_and_tick_promotes() -> None:
    config = AlertRulesConfig(rules=(AlertRule(label="person", min_duration_s=10),))
    rules = AlertRules(config)
    assert reasons(rules.handle(event("new", 1000))) == ["too_short"]
    assert rules.tick(1005.0) == []
    promoted = published(rules.tick(1010.0))
    assert [d.action for d in promoted] == ["new"]
    assert rules.tick(1011.0) == []  # only once
    assert [d.action for d in published(rules.handle(event("end", 1020, end_ts=1020.0)))] == ["end"]


def test_short_event_is_dropped_and_long_one_ending_unseen_goes_out_whole() -> None:
    rules = AlertRules(AlertRulesConfig(rules=(AlertRule(min_duration_s=10),)))
    rules.handle(event("new", 1000))
    assert reasons(rules.handle(event("end", 1003, end_ts=1003.0))) == ["too_short"]
    assert rules.tick(2000.0) == []

    rules.handle(event("new", 1000, event_id="ev2"))
    decisions = published(rules.handle(event("end", 1015, event_id="ev2", end_ts=1015.0)))
    assert [d.action for d in decisions] == ["new", "end"]
    assert decisions[0].alert_id == decisions[1].alert_id


def test_cooldown_suppresses_flapping_then_lets_a_persisting_event_through() -> None:
    rules = AlertRules(AlertRulesConfig(rules=(AlertRule(source="cam1", cooldown_s=30),)))
    rules.handle(event("new", 1000))
    rules.handle(event("end", 1010, end_ts=1010.0))
    flap = event("new", 1020, event_id="ev2", start_ts=1020.0)
    assert reasons(rules.handle(flap)) == ["cooldown"]
    # Another label on the same camera has its own cooldown.
    assert published(rules.handle(event("new", 1020, event_id="ev3", label="car", start_ts=1020.0)))
    assert rules.tick(1039.0) == []
    later = published(rules.tick(1040.0))
    assert [(d.action, d.event_id) for d in later] == [("new", "ev2")]


def local_ts(hour: int, minute: int) -> float:
    return datetime(2024, 1, 15, hour, minute, tzinfo=PARIS).timestamp()


@pytest.mark.parametrize(
    ("hour", "minute", "severity", "goes_out"),
    [
        (21, 59, "warning", True),
        (22, 0, "warning", False),
        (23, 30, "warning", False),
        (23, 30, "critical", True),
        (3, 0, "info", False),
        (6, 29, "warning", False),
        (6, 30, "warning", True),
        (12, 0, "warning", True),
    ],
)
def test_quiet_hours_cross_midnight_in_local_time(
    hour: int, minute: int, severity: str, goes_out: bool
) -> None:
    config = AlertRulesConfig.model_validate(
        {"timezone": "Europe/Paris", "quiet_hours": [{"start": "22:00", "end": "06:30"}]}
    )
    ts = local_ts(hour, minute)
    decisions = AlertRules(config).handle(event("new", ts, start_ts=ts, severity=severity))
    assert bool(published(decisions)) is goes_out
    if not goes_out:
        assert reasons(decisions) == ["quiet_hours"]


def test_alert_out_before_quiet_hours_still_ends_during_them() -> None:
    config = AlertRulesConfig.model_validate(
        {"timezone": "Europe/Paris", "quiet_hours": [{"start": "22:00", "end": "06:30"}]}
    )
    rules = AlertRules(config)
    start = local_ts(21, 50)
    assert published(rules.handle(event("new", start, start_ts=start)))
    end = local_ts(22, 10)
    assert [d.action for d in published(rules.handle(event("end", end, end_ts=end)))] == ["end"]


def test_rule_can_opt_out_of_global_quiet_hours() -> None:
    config = AlertRulesConfig.model_validate(
        {
            "quiet_hours": [{"start": "00:00", "end": "23:59"}],
            "rules": [{"source": "gas1", "quiet_hours": []}],
        }
    )
    rules = AlertRules(config)
    ts = datetime(2024, 1, 15, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert published(rules.handle(event("new", ts, source="gas1", start_ts=ts)))
    assert reasons(rules.handle(event("new", ts, source="cam1", start_ts=ts))) == ["quiet_hours"]


def test_required_zones_any_and_all() -> None:
    config = AlertRulesConfig(
        rules=(
            AlertRule(source="cam1", required_zones=frozenset({"door", "yard"})),
            AlertRule(source="cam2", required_zones=frozenset({"door", "yard"}), zone_match="all"),
        )
    )
    rules = AlertRules(config)
    assert reasons(rules.handle(event(zones=frozenset({"street"})))) == ["zone"]
    # Entering the zone later starts the alert.
    assert published(rules.handle(event("update", 1001, zones=frozenset({"yard"}))))
    assert reasons(rules.handle(event(source="cam2", zones=frozenset({"door"})))) == ["zone"]
    assert published(
        rules.handle(event("update", 1002, source="cam2", zones=frozenset({"door", "yard"})))
    )


def test_most_specific_rule_wins_and_unmatched_policy() -> None:
    config = AlertRulesConfig(
        unmatched="suppress",
        rules=(
            AlertRule(source="cam1", severity="info"),
            AlertRule(source="cam1", label="person", severity="critical"),
            AlertRule(label="car", enabled=False),
        ),
    )
    rules = AlertRules(config)
    assert published(rules.handle(event(label="person")))[0].severity == "critical"
    assert published(rules.handle(event(event_id="e2", label="dog")))[0].severity == "info"
    assert reasons(rules.handle(event(event_id="e3", source="cam9", label="car"))) == ["disabled"]
    assert reasons(rules.handle(event(event_id="e4", source="cam9", label="dog"))) == ["no_rule"]


def test_score_threshold() -> None:
    rules = AlertRules(AlertRulesConfig(rules=(AlertRule(min_score=0.6),)))
    assert reasons(rules.handle(event(score=0.5))) == ["score"]
    assert published(rules.handle(event("update", 1001, score=0.7)))


def test_silent_alert_is_ended_by_tick_and_tracking_is_bounded() -> None:
    rules = AlertRules(AlertRulesConfig(stale_after_s=60, max_tracked_events=3))
    rules.handle(event("new", 1000))
    ended = published(rules.tick(1060.0))
    assert [(d.action, d.end_ts) for d in ended] == [("end", 1000.0)]
    for index in range(10):
        rules.handle(event("new", 2000, event_id=f"many{index}"))
    assert len(rules._tracked) == 3  # noqa: SLF001 - the bound on memory is the point


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"rules\[1\]"):
        AlertRulesConfig(rules=(AlertRule(source="cam1"), AlertRule(source="cam1")))
    with pytest.raises(ValidationError, match="end"):
        AlertRulesConfig.model_validate({"quiet_hours": [{"start": "22:00", "end": "22:00"}]})
    with pytest.raises(ValidationError, match="zone_match"):
        AlertRule(zone_match="all")
    with pytest.raises(ValidationError, match="timezone"):
        AlertRulesConfig(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="cooldown_s"):
        AlertRule.model_validate({"cooldown_s": -1})
    with pytest.raises(ValidationError, match="colour"):
        AlertRule.model_validate({"colour": "red"})
    rule = AlertRule()
    with pytest.raises(ValidationError):
        rule.cooldown_s = 5  # type: ignore[misc]  # frozen: what the test checks


def test_reconfigure_keeps_open_alerts() -> None:
    rules = AlertRules(AlertRulesConfig())
    first = published(rules.handle(event()))[0]
    rules.reconfigure(AlertRulesConfig(unmatched="suppress"))
    end = published(rules.handle(event("end", 1010, end_ts=1010.0)))
    assert [(d.action, d.alert_id) for d in end] == [("end", first.alert_id)]
    assert reasons(rules.handle(event(event_id="e9"))) == ["no_rule"]
