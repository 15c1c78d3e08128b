"""gas-replay through a real broker, and start-up errors that name the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.probe import MakeProbe
from tests.harness.stage_process import REPO, StartStage


def test_a_trace_is_replayed_in_order_then_the_stage_exits_zero(
    stage: StartStage, probe: MakeProbe, root: str, tmp_path: Path
) -> None:
    trace = tmp_path / "leak.csv"
    rows = [f"{t * 0.5},cellar,methane,{400 + t * 300}" for t in range(40)]
    trace.write_text("time,sensor,gas,value\n" + "\n".join(rows) + "\n")
    observer = probe("operator")
    observer.subscribe(f"{root}/sensor/gas/+")
    observer.subscribe(f"{root}/status/gas-replay")
    process = stage("gas-replay", EDGEGW_TRACE_PATH=str(trace), EDGEGW_SPEED="20")
    readings = observer.wait_for(lambda m: "/sensor/gas/" in m.topic, count=40, timeout_s=20)
    values = [m.json()["value"] for m in readings]
    assert values == [400 + t * 300 for t in range(40)]
    stamps = [m.json()["ts"] for m in readings]
    assert stamps[1] - stamps[0] == pytest.approx(0.5, abs=1e-3)  # trace spacing kept
    assert process.wait(timeout_s=20) == 0
    assert observer.wait_for(lambda m: m.payload == b"offline")


@pytest.mark.parametrize(
    ("module", "env", "named"),
    [
        ("services.gas_average", {"EDGEGW_TIME_WINDOW_S": "-1"}, "EDGEGW_TIME_WINDOW_S"),
        ("services.gas_average", {"EDGEGW_MQTT_PORT": "99999"}, "EDGEGW_MQTT_PORT"),
        ("services.gas_replay", {"EDGEGW_SENSORS": "kitchen:radon"}, "EDGEGW_SENSORS"),
        ("services.gas_replay", {"EDGEGW_TRACE_PATH": "/nonexistent.csv"}, "EDGEGW_TRACE_PATH"),
    ],
)
def test_bad_settings_stop_the_stage_at_start_naming_the_variable(
    module: str, env: dict[str, str], named: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert named in done.stderr
