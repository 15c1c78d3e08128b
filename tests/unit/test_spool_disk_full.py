"""A full disk under the spool: a spool-full condition, never a crash.

The spool lives on a 2 MiB tmpfs of its own (mounted here; the tests run
as root). No timing: the disk fills by size alone.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cloud_bridge.spool import Spool, SpoolDiskError
from services.cloud_bridge.spool_disk import file_bytes_for, fit_budget_to_disk
from tests.harness.small_disk import fill_disk, tmpfs

TOPIC = "edgegw/gw1/alert/cam1"
SMALL_DISK = 2 * 1024 * 1024


@pytest.fixture
def small_disk() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="spool-disk-"))
    try:
        with tmpfs(where, str(SMALL_DISK)) as disk:
            yield disk
    finally:
        where.rmdir()


def test_a_full_disk_raises_spool_disk_error_and_the_spool_recovers(small_disk: Path) -> None:
    path = small_disk / "spool.db"
    with Spool(path, fit_budget_to_disk(path, 10**9)) as spool:
        stored = [spool.append(TOPIC, b"a" * 900, "alert", f"a{i}").seq for i in range(20)]
        hog = fill_disk(small_disk)
        with pytest.raises(SpoolDiskError):
            for index in range(1000):
                spool.append(TOPIC, b"a" * 900, "alert", f"b{index}")
        assert len(spool) >= 20  # what was stored stays stored
        with pytest.raises(SpoolDiskError):
            spool.append(TOPIC, b"a" * 900, "alert", "refused")
        # The disk frees up: the spool was not left inside a failed
        # transaction, and works again.
        hog.unlink()
        spool.mark_delivered([seq for seq in stored if seq is not None])
        spool.checkpoint()
        assert spool.append(TOPIC, b"b" * 900, "alert", "after").status == "stored"
        assert "refused" not in {m.message_id for m in spool.oldest(2000)}


def test_the_wal_is_checkpointed_within_the_budget(small_disk: Path) -> None:
    budget = 128 * 1024
    assert file_bytes_for(budget) <= SMALL_DISK
    with Spool(small_disk / "spool.db", budget) as spool:
        for round_ in range(10):
            seqs = [
                spool.append(TOPIC, b"c" * 700, "alert", f"{round_}-{index}").seq
                for index in range(100)
            ]
            spool.mark_delivered([seq for seq in seqs if seq is not None])
        files = sum(f.stat().st_size for f in small_disk.iterdir())
    # 10 x 100 x ~720 bytes went through it (5 times the budget).
    assert files <= file_bytes_for(budget)


def test_a_budget_larger_than_the_disk_is_clamped_with_a_warning_naming_it(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        fitted = fit_budget_to_disk(small_disk / "spool.db", 256 * 1024 * 1024, "EDGEGW_X")
    assert file_bytes_for(fitted) <= SMALL_DISK
    assert any(getattr(record, "setting", None) == "EDGEGW_X" for record in caplog.records), (
        caplog.records
    )
