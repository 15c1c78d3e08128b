"""How much disk the spool may take, and what counts as a disk error.

The spool is bounded in logical bytes (topic + payload); its file is larger
(pages, the id index, the WAL, the ids remembered as delivered). These
functions turn a budget into disk bytes and back, so a budget the disk
cannot hold is clamped at start instead of failing mid-outage.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

# Bytes of file per logical byte (pages, the id index, row headers): 1.4-1.7
# measured with 300-1500 byte payloads; a margin on top.
FILE_OVERHEAD = 2.5
DELIVERED_ROW_BYTES = 100  # one remembered delivered id, with its index entry
MIN_WAL_BYTES = 64 * 1024
MAX_WAL_BYTES = 4 * 1024 * 1024
FILE_MARGIN_BYTES = 128 * 1024
MIN_MAX_BYTES = 4096
# SQLite primary result codes that mean the disk, not the data: FULL, IOERR.
_DISK_CODES = {13, 10}


def wal_limit_bytes(max_bytes: int) -> int:
    """How large the WAL may grow between checkpoints, for a given budget."""
    return max(MIN_WAL_BYTES, min(MAX_WAL_BYTES, max_bytes // 8))


def file_bytes_for(max_bytes: int, remember_delivered: int = 10_000) -> int:
    """Disk the spool may take for `max_bytes` of messages (file + WAL)."""
    return (
        int(max_bytes * FILE_OVERHEAD)
        + 2 * wal_limit_bytes(max_bytes)
        + remember_delivered * DELIVERED_ROW_BYTES
        + FILE_MARGIN_BYTES
    )


def fit_budget_to_disk(
    path: Path, max_bytes: int, setting: str = "max_bytes", remember_delivered: int = 10_000
) -> int:
    """`max_bytes`, or less with a WARNING naming `setting` when the disk
    under `path` (free space plus the spool's own files) cannot hold it."""
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    own = sum(f.stat().st_size for f in files if f.exists())
    available = shutil.disk_usage(path.parent).free + own
    if file_bytes_for(max_bytes, remember_delivered) <= available:
        return max_bytes
    fitted = max_bytes
    while fitted > MIN_MAX_BYTES and file_bytes_for(fitted, remember_delivered) > available:
        fitted = max(MIN_MAX_BYTES, int(fitted * 0.9))
    log.warning(
        "spool budget larger than the disk: clamped",
        extra={"setting": setting, "configured": max_bytes, "clamped": fitted, "disk": available},
    )
    return fitted


def is_disk_error(error: Exception) -> bool:
    if isinstance(error, sqlite3.OperationalError):
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in _DISK_CODES
        text = str(error).lower()
        return "disk is full" in text or "disk i/o error" in text
    return isinstance(error, OSError)
