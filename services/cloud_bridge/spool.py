"""Durable store-and-forward spool for messages bound to the cloud.

One SQLite file in WAL mode with ``synchronous=FULL``: `append` returns only
after its transaction is committed and the WAL is fsynced, so a message the
bridge has acknowledged upstream survives a SIGKILL of the bridge and, as far
as SQLite and the disk honour fsync, a power cut.

Policy, decided once here:

* The spool is bounded in *logical* bytes: Σ(len(topic) + len(payload)) ≤
  ``max_bytes``. The file itself is larger (pages, indexes, WAL).
* When a new message does not fit, victims are the oldest summaries, then the
  oldest status messages. Alerts are never evicted.
* If even evicting every summary and status message would not make room:
  an **alert** is refused with `SpoolFullError` and nothing is counted as lost
  — the caller must not acknowledge it upstream, so the gateway broker keeps
  it and redelivers it later. A **summary or status** message is dropped
  instead (counted as lost, reason ``refused``) and the caller acknowledges
  it: alerts already spooled outrank a new summary.
* TTL per class counts from the moment the spool took the message (the
  spool's wall clock, which survives restarts). Expired messages are never
  returned for replay; they are deleted and counted (reason ``expired``) by
  `purge_expired` and by every `append`.
* Losses (per class and reason: messages, bytes) live in the same file, so the
  counters survive restarts and are reported as cumulative totals.
* A message id is stored once: re-appending an id still spooled, or one
  delivered recently (the last ``remember_delivered`` ids), is a no-op that
  returns the original sequence — a QoS 1 redelivery after a crash between
  our commit and our upstream acknowledgement is not sent twice.

Disk: the WAL is kept small (`wal_autocheckpoint` and `journal_size_limit`
from the budget, and a TRUNCATE checkpoint after large deletes and from
`maintain`), so the file stays within `spool_disk.file_bytes_for(max_bytes)`;
the budget is checked against the free disk at start (`fit_budget_to_disk`). A full or
failing disk raises `SpoolDiskError` and rolls the transaction back: a
spool-full condition for the caller, like `SpoolFullError` for an alert.

The API is blocking and thread-safe (one connection behind a lock, usable
from `asyncio.to_thread` workers). Other processes may open the file
read-only at any time; WAL lets them read while the bridge writes. One
process writes at a time.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from services.cloud_bridge.spool_disk import is_disk_error, wal_limit_bytes
from services.cloud_bridge.spool_records import (
    MESSAGE_CLASSES,
    AppendResult,
    AppendStatus,
    ClassUsage,
    LossReason,
    MessageClass,
    SpoolDiskError,
    SpooledMessage,
    SpoolFullError,
    SpoolStats,
    message_size,
)

__all__ = [
    "MESSAGE_CLASSES",
    "AppendResult",
    "AppendStatus",
    "ClassUsage",
    "LossReason",
    "MessageClass",
    "Spool",
    "SpoolDiskError",
    "SpoolFullError",
    "SpoolStats",
    "SpooledMessage",
    "message_size",
]

# Summaries go first, then status; alerts are absent on purpose.
EVICTION_ORDER: tuple[MessageClass, ...] = ("summary", "status")

DEFAULT_TTL_S: dict[MessageClass, float | None] = {
    "alert": 7 * 24 * 3600.0,
    "summary": 24 * 3600.0,
    "status": 3600.0,
}

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    message_class TEXT NOT NULL CHECK (message_class IN ('alert', 'summary', 'status')),
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    ts REAL NOT NULL,
    spooled_at REAL NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_class ON entries (message_class, seq);
CREATE INDEX IF NOT EXISTS entries_by_age ON entries (message_class, spooled_at);
CREATE TABLE IF NOT EXISTS class_totals (
    message_class TEXT PRIMARY KEY,
    entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO class_totals VALUES ('alert', 0, 0), ('summary', 0, 0), ('status', 0, 0);
CREATE TRIGGER IF NOT EXISTS entries_added AFTER INSERT ON entries BEGIN
    UPDATE class_totals SET entries = entries + 1, bytes = bytes + NEW.size
    WHERE message_class = NEW.message_class;
END;
CREATE TRIGGER IF NOT EXISTS entries_removed AFTER DELETE ON entries BEGIN
    UPDATE class_totals SET entries = entries - 1, bytes = bytes - OLD.size
    WHERE message_class = OLD.message_class;
END;
CREATE TABLE IF NOT EXISTS losses (
    message_class TEXT NOT NULL,
    reason TEXT NOT NULL,
    messages INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (message_class, reason)
);
CREATE TABLE IF NOT EXISTS delivered (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE
);
COMMIT;
"""


class Spool:
    def __init__(
        self,
        path: Path | str,
        max_bytes: int,
        ttl_s: Mapping[MessageClass, float | None] | None = None,
        remember_delivered: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if remember_delivered < 0:
            raise ValueError("remember_delivered must be >= 0")
        ttl = dict(DEFAULT_TTL_S) if ttl_s is None else {**DEFAULT_TTL_S, **ttl_s}
        for name, seconds in ttl.items():
            if seconds is not None and seconds <= 0:
                raise ValueError(f"ttl_s[{name!r}] must be positive or None")
        self.max_bytes = max_bytes
        self._ttl = ttl
        self._remember_delivered = remember_delivered
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"could not put the spool in WAL mode (got {mode!r})")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._wal_path = Path(f"{path}-wal")
        self._wal_limit = wal_limit_bytes(max_bytes)
        page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._db.execute(f"PRAGMA wal_autocheckpoint={max(16, self._wal_limit // page_size)}")
        self._db.execute(f"PRAGMA journal_size_limit={self._wal_limit}")
        self._db.executescript(_SCHEMA)

    # -- writing -----------------------------------------------------------

    def append(
        self,
        topic: str,
        payload: bytes,
        message_class: MessageClass,
        message_id: str,
        qos: int = 1,
        retain: bool = False,
        ts: float | None = None,
    ) -> AppendResult:
        """Store a message durably; see the module docstring for the policy.

        Raises `SpoolFullError` for an alert that cannot fit.
        """
        if message_class not in MESSAGE_CLASSES:
            raise ValueError(f"message_class must be one of {MESSAGE_CLASSES}")
        if qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        if not message_id:
            raise ValueError("message_id must not be empty")
        size = message_size(topic, payload)
        now = self._clock()
        with self._lock, self._transaction():
            self._purge_expired(now)
            row = self._db.execute(
                "SELECT seq FROM entries WHERE message_id = ?", (message_id,)
            ).fetchone()
            if row is not None:
                return AppendResult("duplicate", int(row[0]))
            row = self._db.execute(
                "SELECT seq FROM delivered WHERE message_id = ?", (message_id,)
            ).fetchone()
            if row is not None:
                return AppendResult("delivered_before", int(row[0]))
            evicted = self._make_room(message_class, message_id, size)
            if evicted is None:
                self._count_loss(message_class, "refused", 1, size)
                return AppendResult("refused", None)
            message_ts = now if ts is None else ts
            cursor = self._db.execute(
                "INSERT INTO entries (message_id, message_class, topic, payload, qos, retain,"
                " ts, spooled_at, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    message_class,
                    topic,
                    payload,
                    qos,
                    int(retain),
                    message_ts,
                    now,
                    size,
                ),
            )
            seq = cursor.lastrowid
            assert seq is not None
            return AppendResult("stored", seq, evicted)

    def _make_room(self, message_class: MessageClass, message_id: str, size: int) -> int | None:
        """Evict until `size` fits; the number evicted, or None when it cannot fit."""
        usage = self._usage()
        overflow = sum(u.bytes for u in usage.values()) + size - self.max_bytes
        if overflow <= 0:
            return 0
        evictable = sum(usage[name].bytes for name in EVICTION_ORDER)
        if overflow > evictable:
            if message_class == "alert":
                raise SpoolFullError(message_id, size, self.max_bytes, usage["alert"].bytes)
            return None
        victims: list[tuple[int, MessageClass, int]] = []
        freed = 0
        for victim_class in EVICTION_ORDER:
            rows = self._db.execute(
                "SELECT seq, size FROM entries WHERE message_class = ? ORDER BY seq",
                (victim_class,),
            )
            for seq, victim_size in rows:
                victims.append((int(seq), victim_class, int(victim_size)))
                freed += int(victim_size)
                if freed >= overflow:
                    break
            if freed >= overflow:
                break
        self._db.executemany("DELETE FROM entries WHERE seq = ?", [(v[0],) for v in victims])
        for victim_class in EVICTION_ORDER:
            sizes = [v[2] for v in victims if v[1] == victim_class]
            if sizes:
                self._count_loss(victim_class, "evicted", len(sizes), sum(sizes))
        return len(victims)

    def mark_delivered(self, seqs: Iterable[int]) -> int:
        """Forget messages the cloud has acknowledged; returns how many were removed."""
        wanted = sorted(set(seqs))
        if not wanted:
            return 0
        removed = 0
        with self._lock, self._transaction():
            for seq in wanted:
                row = self._db.execute(
                    "DELETE FROM entries WHERE seq = ? RETURNING message_id", (seq,)
                ).fetchone()
                if row is None:
                    continue
                removed += 1
                if self._remember_delivered:
                    self._db.execute(
                        "INSERT OR REPLACE INTO delivered (seq, message_id) VALUES (?, ?)",
                        (seq, row[0]),
                    )
            if self._remember_delivered:
                self._db.execute(
                    "DELETE FROM delivered WHERE seq <= (SELECT seq FROM delivered"
                    " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (self._remember_delivered,),
                )
        if removed and self._wal_bytes() > self._wal_limit:
            self.checkpoint()
        return removed

    def checkpoint(self) -> None:
        """Copy the WAL into the file and truncate it (frees its disk)."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except (sqlite3.OperationalError, OSError) as error:
                if is_disk_error(error):
                    raise SpoolDiskError(f"checkpoint: {error}") from error
                raise

    def maintain(self) -> int:
        """Periodic upkeep: purge expired messages, then checkpoint."""
        removed = self.purge_expired()
        self.checkpoint()
        return removed

    def _wal_bytes(self) -> int:
        try:
            return self._wal_path.stat().st_size
        except FileNotFoundError:
            return 0

    def purge_expired(self) -> int:
        """Delete and count messages older than their class TTL."""
        with self._lock, self._transaction():
            return self._purge_expired(self._clock())

    def _purge_expired(self, now: float) -> int:
        removed = 0
        for name, ttl in self._ttl.items():
            if ttl is None:
                continue
            cutoff = now - ttl
            count, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
                " WHERE message_class = ? AND spooled_at <= ?",
                (name, cutoff),
            ).fetchone()
            if count:
                self._db.execute(
                    "DELETE FROM entries WHERE message_class = ? AND spooled_at <= ?",
                    (name, cutoff),
                )
                self._count_loss(name, "expired", int(count), int(size))
                removed += int(count)
        return removed

    def _count_loss(self, message_class: str, reason: LossReason, messages: int, size: int) -> None:
        self._db.execute(
            "INSERT INTO losses (message_class, reason, messages, bytes) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (message_class, reason) DO UPDATE SET"
            " messages = messages + excluded.messages, bytes = bytes + excluded.bytes",
            (message_class, reason, messages, size),
        )

    # -- reading -----------------------------------------------------------

    def oldest(self, limit: int, after_seq: int = 0) -> list[SpooledMessage]:
        """Up to `limit` unexpired messages with seq > `after_seq`, oldest first.

        Replay pages through the backlog with `after_seq` = the last seq seen,
        so messages in flight are not fetched twice.
        """
        if limit <= 0:
            return []
        now = self._clock()
        expired_clauses: list[str] = []
        params: list[object] = [after_seq]
        for name, ttl in self._ttl.items():
            if ttl is not None:
                expired_clauses.append("(message_class = ? AND spooled_at <= ?)")
                params += [name, now - ttl]
        where = "seq > ?"
        if expired_clauses:
            where += " AND NOT (" + " OR ".join(expired_clauses) + ")"
        params.append(limit)
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, message_id, message_class, topic, payload, qos, retain, ts,"
                f" spooled_at FROM entries WHERE {where} ORDER BY seq LIMIT ?",
                params,
            ).fetchall()
        return [
            SpooledMessage(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], bool(r[6]), r[7], r[8])
            for r in rows
        ]

    def stats(self) -> SpoolStats:
        with self._lock:
            usage = self._usage()
            losses: dict[MessageClass, dict[LossReason, ClassUsage]] = {
                name: {} for name in MESSAGE_CLASSES
            }
            for name, reason, messages, size in self._db.execute(
                "SELECT message_class, reason, messages, bytes FROM losses"
            ):
                losses[name][reason] = ClassUsage(int(messages), int(size))
            oldest = self._db.execute("SELECT MIN(spooled_at) FROM entries").fetchone()[0]
        return SpoolStats(self.max_bytes, usage, losses, None if oldest is None else float(oldest))

    def _usage(self) -> dict[MessageClass, ClassUsage]:
        usage: dict[MessageClass, ClassUsage] = {name: ClassUsage(0, 0) for name in MESSAGE_CLASSES}
        for name, entries, size in self._db.execute(
            "SELECT message_class, entries, bytes FROM class_totals"
        ):
            usage[name] = ClassUsage(int(entries), int(size))
        return usage

    def __len__(self) -> int:
        with self._lock:
            return int(
                self._db.execute("SELECT COALESCE(SUM(entries), 0) FROM class_totals").fetchone()[0]
            )

    # -- lifecycle ---------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so the read-then-write
        # steps of `append` see totals no other writer changes underneath.
        # A failed COMMIT (disk full) leaves the transaction open: roll back
        # too, or every later BEGIN would fail.
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise
        except (sqlite3.OperationalError, OSError) as error:
            if is_disk_error(error):
                raise SpoolDiskError(f"spool disk: {error}") from error
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
