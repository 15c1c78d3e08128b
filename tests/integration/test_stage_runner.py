"""A stage's life ends when it must: a failed worker stops the stage in order
with a non-zero exit and `offline`, and SIGTERM ends a stage even when a worker
thread is blocked in a library call that cannot be cancelled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.harness.broker import MosquittoBroker
from tests.harness.probe import MakeProbe
from tests.harness.stage_process import REPO

GRACE_S = 1.0

# A stage as small as can be: the door (as gas-average) and one worker whose
# behaviour the test picks; run through the same entry point every stage uses.
STAGE = textwrap.dedent(
    """
    import asyncio, sys, time
    from schemas.topics import GAS_AVERAGE
    from services.common.door import MqttDoor
    from services.common.entry import run_stage_main
    from services.common.settings import StageSettings
    from services.common.stage_runner import serve

    async def worker(stop: asyncio.Event) -> None:
        await asyncio.sleep(1.0)  # the door is online by then
        if sys.argv[1] == "fail":
            raise RuntimeError("camera unplugged")
        print("blocking", flush=True)
        await asyncio.to_thread(time.sleep, 600)  # a call nothing can cancel

    async def run(settings: StageSettings) -> None:
        await serve(MqttDoor(settings, GAS_AVERAGE), [worker])

    run_stage_main(GAS_AVERAGE, StageSettings, run)
    """
)


def _start(
    broker: MosquittoBroker, gateway_id: str, mode: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **broker.env_for("gas-average", gateway_id),
        "EDGEGW_SHUTDOWN_GRACE_S": str(GRACE_S),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-c", STAGE, mode],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _start_online(
    broker: MosquittoBroker, probe: MakeProbe, gateway_id: str, root: str, mode: str, log: Path
) -> subprocess.Popen[bytes]:
    """`_start`, returning once the stage says it is online."""
    observer = probe("operator")
    observer.subscribe(f"{root}/status/gas-average")
    process = _start(broker, gateway_id, mode, log)
    observer.wait_for(lambda m: m.payload == b"online")
    return process


def _retained_status(probe: MakeProbe, root: str) -> bytes:
    late = probe("operator")
    late.subscribe(f"{root}/status/gas-average")
    return late.wait_for(lambda m: m.retained)[0].payload


def test_a_failed_worker_stops_the_stage_with_exit_1_and_offline(
    broker: MosquittoBroker, probe: MakeProbe, gateway_id: str, root: str, tmp_path: Path
) -> None:
    log = tmp_path / "stage.log"
    process = _start_online(broker, probe, gateway_id, root, "fail", log)
    # The worker fails one second after start; the stage then has twice its
    # grace to stop (plus start-up slack for a loaded machine).
    code = process.wait(timeout=1.0 + 2 * GRACE_S + 10)
    assert code == 1, log.read_text()
    assert "camera unplugged" in log.read_text()
    assert _retained_status(probe, root) == b"offline"


def test_sigterm_ends_a_stage_whose_worker_thread_is_blocked(
    broker: MosquittoBroker, probe: MakeProbe, gateway_id: str, root: str, tmp_path: Path
) -> None:
    log = tmp_path / "stage.log"
    process = _start_online(broker, probe, gateway_id, root, "block", log)
    _wait_for_line(log, "blocking")
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=2 * GRACE_S + 5)
    finally:
        process.kill()
    assert code == 0, log.read_text()
    assert _retained_status(probe, root) == b"offline"


def _wait_for_line(log: Path, text: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared: {log.read_text()}")
