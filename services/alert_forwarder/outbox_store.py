"""The outbox on disk, so unconfirmed alerts survive a restart of the stage.

One SQLite file (WAL, `synchronous=FULL`): an alert is written before it is
first published, so one the bridge never confirmed is published again by the
next run (same message id: consumers deduplicate). Entries leave the file
once confirmed; the outbox's admission limit bounds it. Blocking and
thread-safe: the stage calls it through `asyncio.to_thread`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS unconfirmed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    topic_source TEXT NOT NULL,
    alert BLOB NOT NULL
);
"""


class OutboxStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def add(self, message_id: str, topic_source: str, alert: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO unconfirmed (message_id, topic_source, alert)"
                " VALUES (?, ?, ?)",
                (message_id, topic_source, alert),
            )

    def remove(self, message_ids: Iterable[str]) -> None:
        wanted = [(message_id,) for message_id in message_ids]
        if not wanted:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM unconfirmed WHERE message_id = ?", wanted)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def load(self) -> list[tuple[str, str, bytes]]:
        """(message id, topic source, alert JSON) of every entry, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT message_id, topic_source, alert FROM unconfirmed ORDER BY seq"
            ).fetchall()
        return [(str(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
