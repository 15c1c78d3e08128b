"""`edgegw health <stage>` (the containers' probe) against a real broker and stage."""

from __future__ import annotations

import socket
import subprocess

from tests.harness.broker import MosquittoBroker
from tests.harness.cli import run_edgegw
from tests.harness.probe import MakeProbe
from tests.harness.stage_process import StartStage


def health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_edgegw(env, "health", *args)


def test_health_says_whether_the_stage_is_online_and_reporting(
    broker: MosquittoBroker, stage: StartStage, probe: MakeProbe, root: str, gateway_id: str
) -> None:
    own = broker.env_for("gas-average", gateway_id)  # the probe runs with the stage's login
    before = health(own, "gas-average")
    assert before.returncode == 1, before.stdout + before.stderr
    assert "status is unknown" in before.stdout

    observer = probe("operator")
    observer.subscribe(f"{root}/health/gas-average")
    process = stage("gas-average", EDGEGW_HEALTH_INTERVAL_S="0.5")
    observer.wait_for(lambda m: m.topic == f"{root}/health/gas-average")

    up = health(own, "gas-average")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "healthy (online, ok)" in up.stdout
    stale = health(own, "gas-average", "--max-age-s", "0.001")
    assert stale.returncode == 1 and "old" in stale.stdout

    process.terminate()
    assert process.wait(30) == 0
    down = health(own, "gas-average")
    assert down.returncode == 1 and "status is offline" in down.stdout


def test_health_without_a_broker_is_unreachable_or_alive_for_liveness(
    broker: MosquittoBroker, gateway_id: str
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    env = {**broker.env_for("gas-average", gateway_id), "EDGEGW_MQTT_PORT": str(port)}
    assert health(env, "gas-average", "--wait", "1").returncode == 3
    assert health(env, "gas-average", "--wait", "1", "--broker-down-ok").returncode == 0
