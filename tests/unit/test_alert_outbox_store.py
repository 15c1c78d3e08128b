"""The outbox on disk: what was stored and not removed comes back, in order."""

from __future__ import annotations

from pathlib import Path

from services.alert_forwarder.outbox import Outbox
from services.alert_forwarder.outbox_store import OutboxStore
from tests.unit.alert_samples import sample_alert as _alert


def test_entries_survive_a_reopen_in_order_until_removed(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "outbox.db"
    store = OutboxStore(path)
    for number in range(5):
        store.add(f"m{number}", "boiler", b'{"n": %d}' % number)
    store.add("m1", "boiler", b"again")  # a known id keeps its first copy
    store.remove(["m0", "m3", "unknown"])
    store.close()

    reopened = OutboxStore(path)
    assert reopened.load() == [
        ("m1", "boiler", b'{"n": 1}'),
        ("m2", "boiler", b'{"n": 2}'),
        ("m4", "boiler", b'{"n": 4}'),
    ]
    reopened.close()


def test_a_reloaded_entry_is_due_at_once() -> None:
    outbox = Outbox(max_entries=10, confirm_timeout_s=3.0, backoff_cap_s=60.0)
    outbox.add("boiler", _alert(1), now=100.0, due_now=True)
    outbox.add("boiler", _alert(2), now=100.0)
    assert [entry.alert.id for entry in outbox.take_due(100.0, limit=10)] == [_alert(1).id]
