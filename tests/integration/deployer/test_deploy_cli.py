"""`edgegw deploy add|ls|stop|start|rm` against a real deployer."""

from __future__ import annotations

import subprocess

import pytest

from tests.harness.broker import MosquittoBroker
from tests.harness.cli import run_edgegw
from tests.harness.probe import MakeProbe
from tests.integration.deployer.conftest import StartDeployer
from tests.integration.deployer.helpers import wait_online

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]


def edgegw(
    broker: MosquittoBroker, gateway_id: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_edgegw(broker.env_for("operator", gateway_id), "deploy", *args, timeout_s=120)


def test_an_operator_adds_lists_stops_starts_and_removes_an_analytic(
    deployer: StartDeployer, probe: MakeProbe, broker: MosquittoBroker, root: str, gateway_id: str
) -> None:
    process = deployer()
    wait_online(probe("operator"), root)

    added = edgegw(
        broker,
        gateway_id,
        "add",
        "cli-counter",
        "edgegw-analytics/hello:1",
        "--saving",
        "640",
        "--memory-mb",
        "32",
        "--publish",
        "analytic_output",
        "--env",
        "PERIOD_S=1",
    )
    assert added.returncode == 0, added.stdout + added.stderr
    assert added.stdout.splitlines()[-1] == "cli-counter: running", added.stdout
    assert "cli-counter: requested" in added.stdout

    listed = edgegw(broker, gateway_id, "ls")
    row = next(line for line in listed.stdout.splitlines() if line.startswith("cli-counter"))
    assert "running" in row and "32 MB" in row and "640 kbit/s" in row

    assert edgegw(broker, gateway_id, "stop", "cli-counter").returncode == 0
    assert edgegw(broker, gateway_id, "start", "cli-counter").returncode == 0
    removed = edgegw(broker, gateway_id, "rm", "cli-counter")
    assert removed.returncode == 0 and "cli-counter: removed" in removed.stdout

    refused = edgegw(broker, gateway_id, "add", "big", "edgegw-analytics/hello:1", "--cpus", "64")
    assert refused.returncode == 1 and "limits.cpus" in refused.stdout

    process.terminate()  # SIGTERM: stops in order, exit 0
    assert process.wait(20) == 0, process.output()[-2000:]
