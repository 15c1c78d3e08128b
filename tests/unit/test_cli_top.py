"""`edgegw top`'s board and the CLI's tables, and the RSS gauge every stage reports."""

from __future__ import annotations

from pathlib import Path

from schemas.service import Metrics
from services.cli.tables import format_table
from services.cli.top import TopBoard
from services.common.stage_runner import resident_memory
from tests.harness.reports import health_of, metrics_of

KEY = ("gw1", "object-detector")


def _metrics(ts: float, counters: dict[str, int], rss: float = 80.0) -> Metrics:
    return metrics_of("object-detector", counters, {"rss_mb": rss}, ts=ts)


def test_rates_drops_and_memory_from_two_reports() -> None:
    board = TopBoard()
    board.observe_status(KEY, "online")
    health = health_of("object-detector", uptime_s=5, reconnects=1)
    board.observe_health(KEY, health)
    board.observe_metrics(
        KEY, _metrics(100, {"received": 100, "published": 10, "frames_dropped": 4})
    )
    first = board.rows()[0]
    assert first[4:7] == ["-", "-", "-"]  # one report: no rate yet
    board.observe_metrics(
        KEY,
        _metrics(
            110, {"received": 400, "published": 60, "frames_dropped": 24, "dead_letters": 2}, 91.25
        ),
    )
    assert board.rows()[0] == [
        "gw1",
        "object-detector",
        "online",
        "ok",
        "30.0",
        "5.0",
        "2.0",
        24,
        2,
        "91.2",
        1,
    ]


def test_a_restarted_stage_gives_no_negative_rate() -> None:
    board = TopBoard()
    board.observe_metrics(KEY, _metrics(100, {"received": 500}))
    board.observe_metrics(KEY, _metrics(110, {"received": 20}))
    assert board.rows()[0][4] == "-"


def test_tables_align_columns() -> None:
    lines = format_table(("stage", "n"), [["gas-average", 7], ["x", 1234]], right={1})
    assert lines == ["stage           n", "gas-average     7", "x            1234"]


def test_resident_memory_reads_vmrss(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmRSS:\t   52224 kB\nThreads:\t3\n")
    assert resident_memory(status) == {"rss_mb": 51.0}
    assert resident_memory(tmp_path / "missing") == {}
    assert resident_memory()["rss_mb"] > 1  # this process, from /proc
