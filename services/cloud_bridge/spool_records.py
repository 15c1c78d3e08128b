"""The spool's records and reports: message classes, what `Spool.append`
answers, what `Spool.stats` reports, and the error an alert that does not fit
raises (and a disk error). Plain data, shared by the spool, the uplinks and the usage report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

MessageClass = Literal["alert", "summary", "status"]
MESSAGE_CLASSES: tuple[MessageClass, ...] = get_args(MessageClass)
LossReason = Literal["evicted", "expired", "refused"]
AppendStatus = Literal["stored", "duplicate", "delivered_before", "refused"]


class SpoolFullError(Exception):
    """An alert does not fit even after evicting every non-alert message."""

    def __init__(self, message_id: str, size: int, max_bytes: int, alert_bytes: int) -> None:
        super().__init__(
            f"spool full: alert {message_id!r} needs {size} bytes, alerts already hold "
            f"{alert_bytes} of {max_bytes}; not acknowledging it upstream keeps it safe"
        )
        self.message_id = message_id
        self.size = size
        self.max_bytes = max_bytes
        self.alert_bytes = alert_bytes


class SpoolDiskError(Exception):
    """The disk under the spool is full or failing (SQLITE_FULL, SQLITE_IOERR,
    ENOSPC): nothing was written. A spool-full condition, never a crash: the
    caller leaves the message unacknowledged upstream and tries again later."""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    seq: int
    message_id: str
    message_class: MessageClass
    topic: str
    payload: bytes
    qos: int
    retain: bool
    ts: float
    spooled_at: float


@dataclass(frozen=True, slots=True)
class AppendResult:
    """`seq` is None only when a non-alert message was refused."""

    status: AppendStatus
    seq: int | None
    evicted: int = 0


@dataclass(frozen=True, slots=True)
class ClassUsage:
    entries: int
    bytes: int


@dataclass(frozen=True, slots=True)
class SpoolStats:
    max_bytes: int
    by_class: dict[MessageClass, ClassUsage]
    losses: dict[MessageClass, dict[LossReason, ClassUsage]]
    oldest_spooled_at: float | None

    @property
    def total_bytes(self) -> int:
        return sum(usage.bytes for usage in self.by_class.values())

    @property
    def total_entries(self) -> int:
        return sum(usage.entries for usage in self.by_class.values())

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict, for the retained usage topic."""
        return {
            "max_bytes": self.max_bytes,
            "bytes": self.total_bytes,
            "entries": self.total_entries,
            "oldest_spooled_at": self.oldest_spooled_at,
            "by_class": {
                name: {"entries": usage.entries, "bytes": usage.bytes}
                for name, usage in self.by_class.items()
            },
            "losses": {
                name: {
                    reason: {"messages": usage.entries, "bytes": usage.bytes}
                    for reason, usage in reasons.items()
                }
                for name, reasons in self.losses.items()
            },
        }


def message_size(topic: str, payload: bytes) -> int:
    """The bytes a message costs against the spool's bound."""
    return len(topic.encode()) + len(payload)
