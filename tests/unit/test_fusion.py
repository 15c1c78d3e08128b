"""Fusion of coinciding gas, sound and person events into one incident."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest
from pydantic import ValidationError

from services.alert_forwarder.fusion import (
    Escalation,
    EscalationPart,
    FusionConfig,
    IncidentDecision,
    IncidentFusion,
)
from services.alert_forwarder.rules import IncomingEvent

_numbers = count()
PLACES = {"gas-kitchen": "kitchen", "mic-kitchen": "kitchen", "cam-kitchen": "kitchen",
          "cam-garage": "garage"}  # fmt: skip
KIND_OF = {"gas": ("gas-kitchen", "smoke_high", "warning"),
           "sound": ("mic-kitchen", "smoke_alarm", "warning"),
           "object": ("cam-kitchen", "person", "info")}  # fmt: skip


def event(kind: str, type_: str, ts: float, event_id: str, **fields: Any) -> IncomingEvent:
    source, label, severity = KIND_OF[kind]
    values: dict[str, Any] = {
        "type": type_,
        "event_id": event_id,
        "message_id": f"m{next(_numbers)}",
        "source": source,
        "kind": kind,
        "label": label,
        "ts": ts,
        "start_ts": fields.pop("start_ts", ts),
        "severity": severity,
    }
    if type_ == "end":
        values["end_ts"] = ts
    values.update(fields)
    return IncomingEvent(**values)


def fusion(**overrides: Any) -> IncidentFusion:
    settings: dict[str, Any] = {"places": PLACES, "window_s": 60, "linger_s": 30}
    settings.update(overrides)
    return IncidentFusion(FusionConfig.model_validate(settings))


def test_gas_sound_and_person_in_the_window_make_one_critical_incident() -> None:
    fuse = fusion()
    out: list[IncidentDecision] = []
    out += fuse.handle(event("gas", "new", 1000, "g1"))
    assert out == []  # one kind alone is not an incident
    out += fuse.handle(event("sound", "new", 1020, "s1"))
    out += fuse.handle(event("object", "new", 1050, "p1"))
    assert [d.action for d in out] == ["new", "update"]
    assert len({d.incident_id for d in out}) == 1
    final = out[-1]
    assert final.place == "kitchen"
    assert {(p.kind, p.event_id) for p in final.parts} == {
        ("gas", "g1"),
        ("sound", "s1"),
        ("object", "p1"),
    }
    assert out[0].severity == "warning"
    assert final.severity == "critical"
    assert final.escalations == ("smoke_alarm_person",)
    assert final.start_ts == 1000
    assert [d.sequence for d in out] == [0, 1]

    # Ends after every part ended, plus the linger.
    fuse.handle(event("gas", "end", 1100, "g1", start_ts=1000))
    fuse.handle(event("sound", "end", 1110, "s1", start_ts=1020))
    assert fuse.handle(event("object", "end", 1120, "p1", start_ts=1050)) == []
    assert fuse.tick(1149.0) == []
    ended = fuse.tick(1150.0)
    assert [(d.action, d.incident_id, d.end_ts, d.sequence) for d in ended] == [
        ("end", final.incident_id, 1120, 2)
    ]
    assert all(p.end_ts is not None for p in ended[0].parts)
    assert fuse.tick(2000.0) == []


def test_events_outside_the_window_stay_separate() -> None:
    fuse = fusion()
    assert fuse.handle(event("gas", "new", 1000, "g1")) == []
    assert fuse.handle(event("gas", "end", 1005, "g1", start_ts=1000)) == []
    # 200 s later: more than the 60 s window after the gas ended.
    assert fuse.handle(event("sound", "new", 1205, "s1")) == []
    assert fuse.handle(event("sound", "end", 1210, "s1", start_ts=1205)) == []

    first = fuse.handle(event("gas", "new", 3000, "g2")) + fuse.handle(
        event("sound", "new", 3010, "s2")
    )
    fuse.handle(event("gas", "end", 3020, "g2", start_ts=3000))
    fuse.handle(event("sound", "end", 3020, "s2", start_ts=3010))
    second = fuse.handle(event("sound", "new", 6000, "s3")) + fuse.handle(
        event("object", "new", 6005, "p3")
    )
    assert first[0].action == "new"
    assert second[0].action == "end"  # the first incident's linger passed long ago
    assert second[1].action == "new"
    assert {p.event_id for p in first[0].parts} == {"g2", "s2"}
    assert {p.event_id for p in second[1].parts} == {"s3", "p3"}
    assert first[0].incident_id != second[1].incident_id


def test_one_kind_or_different_places_do_not_fuse() -> None:
    fuse = fusion(places={**PLACES, "cam-kitchen-2": "kitchen"})
    assert fuse.handle(event("object", "new", 1000, "p1")) == []
    assert fuse.handle(event("object", "new", 1001, "p2", source="cam-kitchen-2")) == []
    # The garage camera is another place; an unmapped source is ignored.
    assert fuse.handle(event("gas", "new", 1002, "g1", source="gas-attic")) == []
    fuse2 = fusion()
    assert fuse2.handle(event("sound", "new", 1000, "s1")) == []
    assert fuse2.handle(event("object", "new", 1001, "p9", source="cam-garage")) == []


def test_a_quiet_but_ongoing_event_still_fuses() -> None:
    fuse = fusion()
    # Gas events speak only at peaks: no update for 300 s, yet still going on.
    assert fuse.handle(event("gas", "new", 1000, "g1")) == []
    [new] = fuse.handle(event("sound", "new", 1300, "s1"))
    assert {p.event_id for p in new.parts} == {"g1", "s1"}


def test_late_message_about_an_old_event_does_not_fuse_with_a_new_one() -> None:
    fuse = fusion()
    assert fuse.handle(event("gas", "new", 1000, "g1")) == []
    # A sound that started and ended long before the gas, reported late.
    late = event("sound", "end", 1001, "s0", start_ts=800.0, end_ts=850.0)
    assert fuse.handle(late) == []


def test_threshold_of_three_kinds() -> None:
    fuse = fusion(min_kinds=3)
    assert fuse.handle(event("gas", "new", 1000, "g1")) == []
    assert fuse.handle(event("sound", "new", 1001, "s1")) == []
    [new] = fuse.handle(event("object", "new", 1002, "p1"))
    assert new.action == "new"
    assert len(new.parts) == 3


def test_incident_id_is_stable_and_redelivery_ignored() -> None:
    gas, sound = event("gas", "new", 1000, "g1"), event("sound", "new", 1001, "s1")
    ids = []
    for _ in range(2):
        fuse = fusion()
        fuse.handle(gas)
        [new] = fuse.handle(sound)
        assert fuse.handle(sound) == []  # same message id again
        ids.append(new.incident_id)
    assert ids[0] == ids[1]


def test_joining_during_linger_keeps_the_incident_open() -> None:
    fuse = fusion()
    fuse.handle(event("gas", "new", 1000, "g1"))
    [new] = fuse.handle(event("sound", "new", 1001, "s1"))
    fuse.handle(event("gas", "end", 1010, "g1", start_ts=1000))
    fuse.handle(event("sound", "end", 1010, "s1", start_ts=1001))
    [joined] = fuse.handle(event("object", "new", 1030, "p1"))
    assert (joined.action, joined.incident_id) == ("update", new.incident_id)
    assert fuse.tick(1045.0) == []  # would have ended at 1040 without the person
    # The person never ends: it goes stale and the incident ends after it.
    [ended] = fuse.tick(1030.0 + 600 + 30)
    assert ended.action == "end"


def test_severity_from_parts_without_escalation() -> None:
    fuse = fusion(escalations=())
    fuse.handle(event("gas", "new", 1000, "g1", severity="info"))
    [new] = fuse.handle(event("object", "new", 1001, "p1", severity="info"))
    assert (new.severity, new.escalations) == ("info", ())
    [raised] = fuse.handle(event("gas", "update", 1002, "g1", start_ts=1000, severity="critical"))
    assert (raised.action, raised.severity) == ("update", "critical")


def test_config_errors_name_the_field() -> None:
    combo = Escalation(name="x", parts=(EscalationPart(kind="gas"), EscalationPart(kind="sound")))
    with pytest.raises(ValidationError, match=r"escalations\[1\]"):
        FusionConfig(escalations=(combo, combo))
    with pytest.raises(ValidationError, match="min_kinds"):
        FusionConfig(min_kinds=1)
    with pytest.raises(ValidationError, match="parts"):
        Escalation(name="y", parts=(EscalationPart(kind="gas"),))
    with pytest.raises(ValidationError, match="extra"):
        FusionConfig.model_validate({"window": 3})
