"""The one lifecycle -> message builder (schemas.envelope) every event and alert goes through."""

from __future__ import annotations

from typing import Any

from schemas.alerts import Alert, AlertPart
from schemas.envelope import LifecycleStep, lifecycle_message, unit_score
from schemas.gas import GasEvent


def _gas(step: LifecycleStep) -> GasEvent:
    where: dict[str, Any] = {"sensor": "k1", "gas": "co", "label": "co_high", "severity": "warning"}
    return lifecycle_message(GasEvent, "gas-average", step, value=6, peak=7, threshold=5, **where)


def test_an_event_message_carries_its_step_and_a_stable_id() -> None:
    step = LifecycleStep("update", "k1-co-1000", 2, start_ts=1.0, end_ts=None)
    event = _gas(step)
    assert (event.id, event.type, event.event_id) == ("k1-co-1000.2", "update", "k1-co-1000")
    assert (event.start_ts, event.end_ts, event.source) == (1.0, None, "gas-average")
    assert _gas(step).id == event.id  # a re-send keeps its id


def test_an_alert_names_its_life_in_alert_id_and_may_bring_its_own_message_id() -> None:
    step = LifecycleStep("end", "a1", 3, start_ts=1.0, end_ts=9.0)
    part = AlertPart(source="k1", kind="gas", event_id="e1", label="co_high")
    alert = lifecycle_message(
        Alert,
        "alert-forwarder",
        step,
        life_id_field="alert_id",
        message_id="a1.end.00ff",
        sequence=step.sequence,
        label="co_high",
        severity="critical",
        parts=[part],
    )
    assert (alert.id, alert.alert_id, alert.type, alert.end_ts) == ("a1.end.00ff", "a1", "end", 9.0)


def test_unit_score_clamps_into_0_1() -> None:
    assert [unit_score(s) for s in (-0.5, 0.0, 0.25, 1.0, 1.5)] == [0.0, 0.0, 0.25, 1.0, 1.0]
