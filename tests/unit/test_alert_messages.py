"""alert-forwarder's edges: schema events to rule input, decisions to Alerts."""

from __future__ import annotations

import orjson
import pytest

from schemas.alerts import Alert
from schemas.audio import SoundEvent
from schemas.gas import GasEvent
from schemas.video import Box, ObjectEvent
from services.alert_forwarder.alert_messages import (
    alert_from_incident,
    alert_from_rule,
    alert_message_id,
    incoming_from,
)
from services.alert_forwarder.fusion import FusionConfig, IncidentFusion
from services.alert_forwarder.rules import AlertRules, AlertRulesConfig, PublishAlert
from services.alert_forwarder.settings import AlertForwarderConfig, AlertForwarderSettings


def _gas(type_: str = "new", **extra: object) -> GasEvent:
    fields: dict[str, object] = {
        "source": "gas-average", "type": type_, "event_id": "g1", "sensor": "kitchen-gas",
        "gas": "smoke", "label": "smoke_high", "severity": "critical", "value": 300.0,
        "peak": 300.0, "threshold": 200.0, "start_ts": 1000.0, "ts": 1001.0, **extra,
    }  # fmt: skip
    return GasEvent.model_validate(fields)


def _person() -> ObjectEvent:
    return ObjectEvent(
        id="o1.0", source="object-detector", type="new",
        event_id="o1", camera="cam", label="person",
        score=0.7, top_score=0.8, box=Box(x1=0, y1=0, x2=1, y2=1), frame_width=10,
        frame_height=10, current_zones=["door"], entered_zones=["hall"], start_ts=1000.0,
        ts=1000.5,
    )  # fmt: skip


def _sound() -> SoundEvent:
    return SoundEvent(
        id="s1.0", source="audio-classifier", type="new",
        event_id="s1", mic="mic", label="smoke_alarm",
        top_class="Smoke detector, smoke alarm", score=0.9, peak_score=0.9, start_ts=1000.0,
        ts=1000.2,
    )  # fmt: skip


def test_each_kind_maps_to_its_source_label_and_message_id() -> None:
    gas_event = _gas()
    gas, person, sound = incoming_from(gas_event), incoming_from(_person()), incoming_from(_sound())
    assert (gas.source, gas.kind, gas.label, gas.severity) == (
        "kitchen-gas", "gas", "smoke_high", "critical"
    )  # fmt: skip
    assert gas.message_id == gas_event.id  # the envelope id: what dedup keys on
    assert (person.source, person.kind) == ("cam", "object")
    assert person.zones == frozenset({"door", "hall"})
    assert person.score == 0.7
    assert (sound.source, sound.kind, sound.score) == ("mic", "sound", 0.9)


def test_rule_alert_message_id_names_alert_action_and_trigger_and_round_trips() -> None:
    new, end = _gas(id="g1.1"), _gas("end", end_ts=1010.0, id="g1.2")
    rules = AlertRules(AlertRulesConfig())
    decisions = rules.handle(incoming_from(new)) + rules.handle(incoming_from(end))
    published = [d for d in decisions if isinstance(d, PublishAlert)]
    alerts = [alert_from_rule(d, now=2000.0) for d in published]
    assert [a.type for a in alerts] == ["new", "end"]
    alert_id = alerts[0].alert_id
    assert [a.id for a in alerts] == [
        alert_message_id(alert_id, "new", "g1.1"),
        alert_message_id(alert_id, "end", "g1.2"),
    ]
    assert Alert.from_bytes(alerts[1].to_bytes()) == alerts[1]
    assert alerts[1].end_ts == 1010.0
    # The same event again (a replay after a restart) gives the same id.
    again = AlertRules(AlertRulesConfig()).handle(incoming_from(new))
    assert isinstance(again[0], PublishAlert)
    assert alert_from_rule(again[0], now=3000.0).id == alerts[0].id


def _published_ids(rules: AlertRules, *events: GasEvent) -> list[str]:
    ids = []
    for event in events:
        for decision in rules.handle(incoming_from(event)):
            if isinstance(decision, PublishAlert):
                ids.append(alert_from_rule(decision, now=2000.0).id)
    return ids


def test_after_a_restart_an_alert_message_never_reuses_an_earlier_id() -> None:
    # Before the restart: new, then an update (severity changes).
    new = _gas(id="g1.1")
    update = _gas("update", severity="warning", id="g1.2", ts=1002.0)
    before = _published_ids(AlertRules(AlertRulesConfig()), new, update)
    # A fresh forwarder (its sequences start again at 0) gets the end.
    end = _gas("end", end_ts=1010.0, id="g1.3", ts=1010.0)
    after = _published_ids(AlertRules(AlertRulesConfig()), end)
    assert len(before) == 2 and len(after) == 2  # the restart sends new + end
    assert not set(before) & set(after)  # the end is not dropped as a duplicate
    assert len(set(before + after)) == 4
    # A redelivery of the end to that fresh forwarder yields the same ids.
    assert _published_ids(AlertRules(AlertRulesConfig()), end) == after


def test_incident_messages_have_distinct_ids_and_a_replay_repeats_them() -> None:
    config = FusionConfig(
        places={"kitchen-gas": "kitchen", "mic": "kitchen", "cam": "kitchen"}, linger_s=0
    )
    events: list[GasEvent | SoundEvent | ObjectEvent] = [
        _gas(id="g1.1"),
        _sound(),
        _person(),
        _gas("end", end_ts=1003.0, id="g1.2"),
    ]

    def replay() -> list[str]:
        fusion = IncidentFusion(config)
        decisions = []
        for event in events:
            decisions += fusion.handle(incoming_from(event))
        decisions += fusion.tick(5000.0)
        return [alert_from_incident(d, now=2000.0).id for d in decisions]

    ids = replay()
    assert len(ids) == len(set(ids)) >= 3
    assert replay() == ids


def test_incident_alert_names_every_part_and_its_escalation() -> None:
    fusion = IncidentFusion(
        FusionConfig(places={"kitchen-gas": "kitchen", "mic": "kitchen", "cam": "kitchen"})
    )
    decisions = []
    for event in (_gas(), _sound(), _person()):
        decisions += fusion.handle(incoming_from(event))
    alerts = [alert_from_incident(d, now=2000.0) for d in decisions]
    last = alerts[-1]
    assert last.place == "kitchen" and last.label == "incident"
    assert {(p.kind, p.source) for p in last.parts} == {
        ("gas", "kitchen-gas"), ("sound", "mic"), ("object", "cam")
    }  # fmt: skip
    assert last.severity == "critical" and last.escalations == ["smoke_alarm_person"]
    assert len({a.alert_id for a in alerts}) == 1
    assert [a.sequence for a in alerts] == list(range(len(alerts)))


def test_a_place_that_is_no_topic_level_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"fusion.places\['cam'\]"):
        AlertForwarderConfig.model_validate({"fusion": {"places": {"cam": "living room"}}})


def test_settings_refuse_a_bad_startup_config_and_non_http_webhooks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "EDGEGW_STARTUP_CONFIG", orjson.dumps({"rules": {"timezone": "Mars/X"}}).decode()
    )
    with pytest.raises(ValueError, match="timezone"):
        AlertForwarderSettings()
    monkeypatch.delenv("EDGEGW_STARTUP_CONFIG")
    monkeypatch.setenv("EDGEGW_WEBHOOK_URLS", "http://a/x, ftp://b/y")
    with pytest.raises(ValueError, match="ftp://b/y"):
        AlertForwarderSettings()
    monkeypatch.setenv("EDGEGW_WEBHOOK_URLS", "http://a/x, https://b/y")
    assert AlertForwarderSettings().urls() == ["http://a/x", "https://b/y"]
