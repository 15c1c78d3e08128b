"""Alerts published but not yet confirmed by the cloud bridge: the outbox.

Why: the gateway broker's PUBACK is not enough. Mosquitto persists its
queues only every `autosave_interval` (1 s), so a broker SIGKILLed right
after acknowledging an alert can lose it before the bridge took it (measured:
936 of 1000 lost when killed 0 s after the last PUBACK). The bridge publishes
`uplink/taken` receipts once an alert is in its durable spool; until then the
forwarder keeps the alert here and publishes it again (same message id, so
every consumer deduplicates).

Policy, decided once here:

* An entry is due `confirm_timeout_s` after its publish; each re-send doubles
  the wait, up to `backoff_cap_s`, so a bridge that is down for hours costs a
  few re-sends per alert per minute, not a storm.
* Due entries come out oldest first (first publish order), so re-sends keep
  the original order as far as the bridge took nothing in between.
* `max_entries` is an admission limit: `has_room` is False once it is
  reached and the stage stops taking events; one event (or tick) may still
  add its few alerts past it, so the size stays within max_entries plus the
  alerts of one decision batch.
* Pure and synchronous: time comes in as an argument. `outbox_store` keeps
  it on disk across restarts (`confirmation` writes through).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from schemas.alerts import Alert


@dataclass(slots=True)
class OutboxEntry:
    topic_source: str  # the `<source>` level of `alert/<source>`
    alert: Alert
    due_at: float
    wait_s: float  # the wait after the next re-send
    resends: int = 0


class Outbox:
    def __init__(self, max_entries: int, confirm_timeout_s: float, backoff_cap_s: float) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        if confirm_timeout_s <= 0 or backoff_cap_s < confirm_timeout_s:
            raise ValueError("need 0 < confirm_timeout_s <= backoff_cap_s")
        self._max = max_entries
        self._timeout = confirm_timeout_s
        self._cap = backoff_cap_s
        self._entries: OrderedDict[str, OutboxEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._entries

    @property
    def has_room(self) -> bool:
        return len(self._entries) < self._max

    def add(self, topic_source: str, alert: Alert, now: float, *, due_now: bool = False) -> None:
        """Track an alert about to be published; a known id keeps its schedule.

        `due_now`: one left unconfirmed by an earlier run, to publish again now.
        """
        if alert.id in self._entries:
            return
        self._entries[alert.id] = OutboxEntry(
            topic_source,
            alert,
            due_at=now if due_now else now + self._timeout,
            wait_s=self._timeout,
        )

    def ids(self) -> set[str]:
        return set(self._entries)

    def confirm(self, message_ids: Iterable[str]) -> int:
        """Forget confirmed alerts; returns how many were waiting."""
        removed = 0
        for message_id in message_ids:
            if self._entries.pop(message_id, None) is not None:
                removed += 1
        return removed

    def take_due(self, now: float, limit: int) -> list[OutboxEntry]:
        """Up to `limit` entries to publish again now, oldest first, each
        rescheduled with a doubled wait (capped)."""
        due: list[OutboxEntry] = []
        for entry in self._entries.values():
            if len(due) >= limit:
                break
            if entry.due_at <= now:
                due.append(entry)
        for entry in due:
            entry.wait_s = min(entry.wait_s * 2, self._cap)
            entry.due_at = now + entry.wait_s
            entry.resends += 1
        return due

    def next_due(self) -> float | None:
        """When the earliest entry falls due (None when empty)."""
        return min((entry.due_at for entry in self._entries.values()), default=None)
