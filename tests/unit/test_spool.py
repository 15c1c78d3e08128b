"""The durable spool: survives reopen and SIGKILL, bounded, evicts in order."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.cloud_bridge.spool import (
    AppendResult,
    MessageClass,
    Spool,
    SpoolFullError,
    message_size,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TOPIC = "edgegw/gw1/alert/cam1"


class FakeWallClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def payload_of(total: int, topic: str = TOPIC) -> bytes:
    """A payload that makes the message cost exactly `total` bytes."""
    return b"p" * (total - len(topic.encode()))


def test_messages_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path, max_bytes=100_000) as spool:
        first = spool.append(TOPIC, b'{"a":1}', "alert", "m1")
        spool.append("edgegw/gw1/summary/gas", b'{"s":2}', "summary", "m2", retain=True)
        spool.mark_delivered([first.seq or 0])
    with Spool(path, max_bytes=100_000) as reopened:
        left = reopened.oldest(10)
        assert [m.message_id for m in left] == ["m2"]
        assert left[0].payload == b'{"s":2}'
        assert left[0].retain is True
        assert left[0].message_class == "summary"
        # A redelivery of an id delivered before the restart is still recognised.
        again = reopened.append(TOPIC, b'{"a":1}', "alert", "m1")
        assert again.status == "delivered_before"
        assert again.seq == first.seq
        assert len(reopened) == 1


CHILD = """
import sys
from services.cloud_bridge.spool import Spool
spool = Spool(sys.argv[1], max_bytes=50_000_000)
start = int(sys.argv[2])
for i in range(start, start + 1_000_000):
    kind = "alert" if i % 4 else "summary"
    spool.append("edgegw/gw1/alert/cam1", b"x" * (50 + i % 200), kind, f"m{i}")
    sys.stdout.write(f"m{i}\\n")
    sys.stdout.flush()
"""


def test_sigkill_while_appending_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    acknowledged: list[str] = []
    for round_number, kill_after in enumerate((150, 400, 40)):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(len(acknowledged) + 1000 * round_number)],
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            text=True,
        )
        assert child.stdout is not None
        for seen_this_round, line in enumerate(child.stdout, start=1):
            acknowledged.append(line.strip())
            if seen_this_round == kill_after // 2:
                # Another process reads while the child writes (WAL).
                reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
                assert reader.execute("SELECT COUNT(*) FROM entries").fetchone()[0] > 0
                reader.close()
            if seen_this_round >= kill_after:
                os.kill(child.pid, signal.SIGKILL)
                break
        # Lines the child wrote before it died were acknowledged too.
        acknowledged.extend(line.strip() for line in child.stdout if line.strip())
        assert child.wait() == -signal.SIGKILL
    with Spool(path, max_bytes=50_000_000) as spool:
        stored = [m.message_id for m in spool.oldest(100_000)]
    assert set(acknowledged) <= set(stored)
    # Order of the acknowledged ids is the spool's order.
    positions = {message_id: index for index, message_id in enumerate(stored)}
    assert [positions[m] for m in acknowledged] == sorted(positions[m] for m in acknowledged)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def test_eviction_takes_oldest_summaries_then_status_never_alerts(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=1000) as spool:
        spool.append(TOPIC, payload_of(200), "status", "st1")
        spool.append(TOPIC, payload_of(200), "summary", "su1")
        spool.append(TOPIC, payload_of(200), "alert", "a1")
        spool.append(TOPIC, payload_of(200), "summary", "su2")
        spool.append(TOPIC, payload_of(200), "summary", "su3")
        assert spool.stats().total_bytes == 1000

        result = spool.append(TOPIC, payload_of(300), "alert", "a2")
        assert result.status == "stored"
        assert result.evicted == 2
        assert [m.message_id for m in spool.oldest(10)] == ["st1", "a1", "su3", "a2"]

        result = spool.append(TOPIC, payload_of(350), "alert", "a3")
        assert result.evicted == 2  # su3, then the status message
        assert [m.message_id for m in spool.oldest(10)] == ["a1", "a2", "a3"]

        stats = spool.stats()
        assert stats.total_bytes == 850
        assert stats.losses["summary"]["evicted"].entries == 3
        assert stats.losses["summary"]["evicted"].bytes == 600
        assert stats.losses["status"]["evicted"].entries == 1
        assert stats.losses["alert"] == {}


def test_alert_refused_when_only_alerts_remain(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=1000) as spool:
        for index in range(4):
            spool.append(TOPIC, payload_of(200), "alert", f"a{index}")
        spool.append(TOPIC, payload_of(150), "summary", "su1")
        with pytest.raises(SpoolFullError) as refused:
            spool.append(TOPIC, payload_of(400), "alert", "too-big")
        assert refused.value.message_id == "too-big"
        # A refusal changes nothing: the summary was not evicted in vain.
        assert [m.message_id for m in spool.oldest(10)] == ["a0", "a1", "a2", "a3", "su1"]
        assert spool.stats().losses["summary"] == {}
        # A summary that cannot fit is dropped and counted, not raised.
        spool.append(TOPIC, payload_of(50), "summary", "su2")
        dropped = spool.append(TOPIC, payload_of(250), "summary", "su3")
        assert dropped.status == "refused"
        assert dropped.seq is None
        assert spool.stats().losses["summary"]["refused"].entries == 1
        # Once the cloud acknowledges, the alert fits.
        spool.mark_delivered([m.seq for m in spool.oldest(2)])
        assert spool.append(TOPIC, payload_of(400), "alert", "too-big").status == "stored"


def test_ttl_per_class_removes_and_counts(tmp_path: Path) -> None:
    clock = FakeWallClock()
    ttl: dict[MessageClass, float | None] = {"alert": None, "summary": 60.0, "status": 10.0}
    with Spool(tmp_path / "s.db", max_bytes=10_000, ttl_s=ttl, clock=clock) as spool:
        spool.append(TOPIC, b"a", "alert", "a1")
        spool.append(TOPIC, b"s", "summary", "su1")
        spool.append(TOPIC, b"t", "status", "st1")
        clock.now += 30
        # Expired entries are not replayed even before a purge runs.
        assert [m.message_id for m in spool.oldest(10)] == ["a1", "su1"]
        assert spool.purge_expired() == 1
        clock.now += 31
        spool.append(TOPIC, b"a", "alert", "a2")  # an append purges too
        assert [m.message_id for m in spool.oldest(10)] == ["a1", "a2"]
        clock.now += 10**7
        assert spool.purge_expired() == 0
        losses = spool.stats().losses
        assert losses["status"]["expired"].entries == 1
        assert losses["summary"]["expired"].entries == 1
        assert losses["summary"]["expired"].bytes == message_size(TOPIC, b"s")
    with Spool(tmp_path / "s.db", max_bytes=10_000, ttl_s=ttl, clock=clock) as reopened:
        assert reopened.stats().losses["summary"]["expired"].entries == 1


def test_dedup_returns_existing_sequence(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10_000) as spool:
        first = spool.append(TOPIC, b"one", "alert", "same-id")
        again = spool.append(TOPIC, b"two", "alert", "same-id")
        assert again.status == "duplicate"
        assert again.seq == first.seq
        assert [m.payload for m in spool.oldest(10)] == [b"one"]


def test_paging_after_seq_and_delivery(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10_000) as spool:
        seqs = [spool.append(TOPIC, b"x", "alert", f"a{i}").seq for i in range(7)]
        page = spool.oldest(3)
        assert [m.seq for m in page] == seqs[:3]
        assert [m.seq for m in spool.oldest(3, after_seq=page[-1].seq)] == seqs[3:6]
        assert spool.mark_delivered([page[1].seq, page[1].seq, 999]) == 1
        assert [m.message_id for m in spool.oldest(10)] == ["a0", "a2", "a3", "a4", "a5", "a6"]


def test_delivered_memory_is_bounded(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10_000, remember_delivered=3) as spool:
        seqs = [spool.append(TOPIC, b"x", "alert", f"a{i}").seq for i in range(6)]
        spool.mark_delivered([s for s in seqs if s is not None])
        assert spool.append(TOPIC, b"x", "alert", "a5").status == "delivered_before"
        assert spool.append(TOPIC, b"x", "alert", "a0").status == "stored"
        db = sqlite3.connect(tmp_path / "s.db")
        assert db.execute("SELECT COUNT(*) FROM delivered").fetchone()[0] == 3
        db.close()


def test_reader_holding_a_snapshot_does_not_block_appends(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path, max_bytes=10_000) as spool:
        spool.append(TOPIC, b"x", "alert", "a0")
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        assert reader.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1
        spool.append(TOPIC, b"x", "alert", "a1")
        spool.mark_delivered([1])
        assert reader.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1
        reader.execute("COMMIT")
        assert reader.execute("SELECT message_id FROM entries").fetchall() == [("a1",)]
        reader.close()


def test_appends_from_several_worker_threads_all_land(tmp_path: Path) -> None:
    # The bridge calls the spool through asyncio.to_thread: any worker thread.
    with Spool(tmp_path / "s.db", max_bytes=1_000_000) as spool:

        def stored_seq(result: AppendResult) -> int:
            assert result.seq is not None, result
            return result.seq

        def append_many(worker: int) -> list[int]:
            return [
                stored_seq(spool.append(TOPIC, b"x", "alert", f"w{worker}-{i}")) for i in range(40)
            ]

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(append_many, range(4)))
        seqs = [seq for result in results for seq in result]
        assert len(set(seqs)) == 160
        assert len(spool) == 160
        for result in results:  # each worker's appends keep their order
            assert result == sorted(result)


append_operation = st.tuples(
    st.just("append"),
    st.sampled_from(["alert", "summary", "summary", "status"]),
    st.integers(min_value=len(TOPIC) + 1, max_value=450),
)
# Appends weigh three times as much as acks or clock steps, so the spool fills.
operation = st.one_of(
    append_operation,
    append_operation,
    append_operation,
    st.tuples(st.just("ack"), st.just(""), st.integers(min_value=0, max_value=3)),
    st.tuples(st.just("advance"), st.just(""), st.integers(min_value=1, max_value=40)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=3, max_size=40))
def test_any_sequence_keeps_bound_order_and_alerts(
    operations: list[tuple[str, MessageClass | Literal[""], int]],
) -> None:
    max_bytes = 1200
    clock = FakeWallClock()
    ttl: dict[MessageClass, float | None] = {"alert": None, "summary": 50.0, "status": None}
    appended: list[str] = []  # every stored id, in append order
    classes: dict[str, str] = {}
    acked: set[str] = set()
    with (
        tempfile.TemporaryDirectory() as folder,
        Spool(Path(folder) / "s.db", max_bytes, ttl_s=ttl, clock=clock) as spool,
    ):
        for number, (kind, message_class, amount) in enumerate(operations):
            if kind == "append":
                assert message_class != ""
                message_id = f"m{number}"
                alert_bytes = spool.stats().by_class["alert"].bytes
                try:
                    result = spool.append(TOPIC, payload_of(amount), message_class, message_id)
                except SpoolFullError:
                    assert message_class == "alert"
                    assert alert_bytes + amount > max_bytes
                    continue
                if result.status == "stored":
                    appended.append(message_id)
                    classes[message_id] = message_class
                else:
                    assert message_class != "alert"
            elif kind == "ack":
                delivered = spool.oldest(amount)
                spool.mark_delivered([m.seq for m in delivered])
                acked.update(m.message_id for m in delivered)
            else:
                clock.now += amount

            spool.purge_expired()  # so losses and totals include what just expired
            alive = spool.oldest(10_000)
            alive_ids = [m.message_id for m in alive]
            stats = spool.stats()
            assert stats.total_bytes <= max_bytes
            assert stats.total_bytes == sum(message_size(m.topic, m.payload) for m in alive)
            # Order preserved: survivors are a subsequence of the append order.
            order = {message_id: index for index, message_id in enumerate(appended)}
            assert [order[m] for m in alive_ids] == sorted(order[m] for m in alive_ids)
            # An alert leaves only when the cloud acknowledged it.
            alerts = [m for m in appended if classes[m] == "alert" and m not in acked]
            assert [m for m in alive_ids if classes[m] == "alert"] == alerts
            # Summaries that remain are the newest ones (oldest evicted/expired first).
            summaries = [m for m in appended if classes[m] == "summary" and m not in acked]
            kept = [m for m in alive_ids if classes[m] == "summary"]
            assert kept == summaries[len(summaries) - len(kept) :]
            lost = sum(
                usage.entries
                for reason, usage in stats.losses["summary"].items()
                if reason != "refused"
            )
            assert lost == len(summaries) - len(kept)
