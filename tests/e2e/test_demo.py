"""`make demo`'s runner end to end: broker, stages, live view, clean stop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_shows_averages_and_a_leak_event_within_30_s_and_stops_cleanly() -> None:
    done = subprocess.run(
        [sys.executable, "tools/demo.py", "--port", "0", "--duration", "25"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    assert "avg  kitchen" in out and "ppm over" in out
    assert "EVENT" in out and "NEW" in out and "co_high" in out, out[-3000:]
    assert "stopped services.gas_average (exit 0)" in out
    assert "stopped services.gas_replay (exit 0)" in out
