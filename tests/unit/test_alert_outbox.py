"""The outbox of unconfirmed alerts: schedule, backoff, receipts, admission."""

from __future__ import annotations

import pytest

from services.alert_forwarder.outbox import Outbox
from services.alert_forwarder.settings import AlertForwarderSettings
from tests.unit.alert_samples import sample_alert as _alert


def test_nothing_is_due_before_the_timeout_then_oldest_first() -> None:
    outbox = Outbox(max_entries=10, confirm_timeout_s=3.0, backoff_cap_s=60.0)
    for number in (1, 2, 3):
        outbox.add("kitchen", _alert(number), now=100.0 + number)
    assert outbox.take_due(103.9, limit=10) == []
    due = outbox.take_due(105.5, limit=10)
    assert [entry.alert.id for entry in due] == ["a1.new.x", "a2.new.x"]
    assert due[0].topic_source == "kitchen"
    assert outbox.next_due() == 106.0  # a3; a1 and a2 now wait 6 s more


def test_each_resend_doubles_the_wait_up_to_the_cap() -> None:
    outbox = Outbox(max_entries=10, confirm_timeout_s=3.0, backoff_cap_s=10.0)
    outbox.add("kitchen", _alert(1), now=0.0)
    now, sent_at = 0.0, []
    while now < 60.0:
        if outbox.take_due(now, limit=10):
            sent_at.append(now)
        now += 0.5
    assert sent_at[:4] == [3.0, 9.0, 19.0, 29.0]  # waits 6, 10 (cap), 10
    assert len(sent_at) == 7


def test_a_receipt_removes_entries_and_unknown_ids_are_ignored() -> None:
    outbox = Outbox(max_entries=10, confirm_timeout_s=1.0, backoff_cap_s=5.0)
    outbox.add("kitchen", _alert(1), now=0.0)
    outbox.add("kitchen", _alert(2), now=0.0)
    assert outbox.confirm(["a1.new.x", "nobody", "a1.new.x"]) == 1
    assert "a1.new.x" not in outbox and len(outbox) == 1
    assert [e.alert.id for e in outbox.take_due(10.0, limit=10)] == ["a2.new.x"]


def test_adding_a_known_id_keeps_its_schedule() -> None:
    outbox = Outbox(max_entries=10, confirm_timeout_s=1.0, backoff_cap_s=5.0)
    outbox.add("kitchen", _alert(1), now=0.0)
    outbox.add("kitchen", _alert(1), now=50.0)  # the same alert made again (a redelivery)
    assert len(outbox) == 1 and outbox.next_due() == 1.0


def test_room_runs_out_at_max_entries_and_comes_back_on_a_receipt() -> None:
    outbox = Outbox(max_entries=2, confirm_timeout_s=1.0, backoff_cap_s=5.0)
    outbox.add("kitchen", _alert(1), now=0.0)
    assert outbox.has_room
    outbox.add("kitchen", _alert(2), now=0.0)
    assert not outbox.has_room
    outbox.confirm(["a2.new.x"])
    assert outbox.has_room


def test_the_limit_caps_one_round_of_resends() -> None:
    outbox = Outbox(max_entries=100, confirm_timeout_s=1.0, backoff_cap_s=5.0)
    for number in range(10):
        outbox.add("kitchen", _alert(number), now=0.0)
    assert len(outbox.take_due(2.0, limit=4)) == 4
    assert len(outbox.take_due(2.0, limit=100)) == 6  # the rest, not the four again


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        Outbox(max_entries=0, confirm_timeout_s=1.0, backoff_cap_s=5.0)
    with pytest.raises(ValueError, match="confirm_timeout_s"):
        Outbox(max_entries=1, confirm_timeout_s=5.0, backoff_cap_s=1.0)


def test_settings_refuse_a_backoff_cap_below_the_confirm_timeout() -> None:
    with pytest.raises(ValueError, match="confirm_backoff_cap_s"):
        AlertForwarderSettings(confirm_timeout_s=10.0, confirm_backoff_cap_s=5.0)
    assert AlertForwarderSettings().confirm_with_bridge  # on unless a deployment has no bridge
