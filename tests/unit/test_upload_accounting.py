"""Upload accounting: cumulative counters, sliding window, budget use."""

from __future__ import annotations

import orjson
import pytest

from services.cloud_bridge.upload_accounting import OVERFLOW_ANALYTIC, UploadAccounting


def test_counts_per_class_and_analytic() -> None:
    usage = UploadAccounting(budget_kbit_per_s=64, now=0.0)
    usage.record("alert", "cam1", 400, now=0.5)
    usage.record("alert", "gas1", 300, now=0.7)
    usage.record("summary", "cam1", 1000, now=1.2)
    snap = usage.snapshot(now=2.0)
    assert snap["total"] == {"bytes": 1700, "messages": 3}
    assert snap["by_class"] == {
        "alert": {"bytes": 700, "messages": 2, "window_bytes": 700},
        "summary": {"bytes": 1000, "messages": 1, "window_bytes": 1000},
    }
    assert snap["by_analytic"] == {
        "cam1": {"bytes": 1400, "messages": 2},
        "gas1": {"bytes": 300, "messages": 1},
    }
    # It is publishable as JSON as it is.
    assert orjson.loads(orjson.dumps(snap)) == snap


def test_window_rate_and_budget_use() -> None:
    usage = UploadAccounting(budget_kbit_per_s=8, now=0.0, window_s=10.0)  # 1000 B/s
    for second in range(20):
        usage.record("summary", "gas1", 500, now=second + 0.1)
    snap = usage.snapshot(now=20.0)
    # Only the last ten one-second buckets count: 5000 B in 10 s = 4 kbit/s.
    assert snap["window_bytes"] == 5000
    assert snap["rate_kbit_s"] == pytest.approx(4.0)
    assert snap["budget_used"] == pytest.approx(0.5)
    assert snap["over_budget"] is False
    assert snap["total"] == {"bytes": 10_000, "messages": 20}

    usage.set_budget(2)
    assert usage.snapshot(now=20.0)["over_budget"] is True
    # Long silence: the window empties, totals stay.
    later = usage.snapshot(now=100.0)
    assert later["window_bytes"] == 0
    assert later["rate_kbit_s"] == 0.0
    assert later["total"] == {"bytes": 10_000, "messages": 20}


def test_rate_at_startup_uses_elapsed_time_not_the_full_window() -> None:
    usage = UploadAccounting(budget_kbit_per_s=100, now=50.0, window_s=60.0)
    usage.record("alert", "cam1", 2500, now=51.0)
    # 2500 B over 2 s = 10 kbit/s, not 2500 B over 60 s.
    assert usage.rate_kbit_per_s(now=52.0) == pytest.approx(10.0)


def test_zero_budget_reports_no_fraction() -> None:
    usage = UploadAccounting(budget_kbit_per_s=0, now=0.0)
    usage.record("status", "bridge", 10, now=0.0)
    snap = usage.snapshot(now=1.0)
    assert snap["budget_used"] is None
    assert snap["over_budget"] is True


def test_memory_is_bounded() -> None:
    usage = UploadAccounting(budget_kbit_per_s=8, now=0.0, window_s=5.0, max_analytics=3)
    for index in range(1000):
        usage.record("summary", f"analytic{index}", 1, now=float(index))
    snap = usage.snapshot(now=1000.0)
    by_analytic = snap["by_analytic"]
    assert isinstance(by_analytic, dict)
    assert len(by_analytic) == 4
    assert by_analytic[OVERFLOW_ANALYTIC] == {"bytes": 997, "messages": 997}
    assert len(usage._buckets) <= 6  # noqa: SLF001 - the bound on memory is the point
    assert snap["window_bytes"] == 5  # records at 995..999 s


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="bucket_s"):
        UploadAccounting(8, now=0.0, window_s=1.0, bucket_s=2.0)
    with pytest.raises(ValueError, match="budget"):
        UploadAccounting(-1, now=0.0)
