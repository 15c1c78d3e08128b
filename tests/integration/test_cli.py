"""The `edgegw` command against a real broker and a real stage."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson

from tests.harness.broker import MosquittoBroker
from tests.harness.cli import run_edgegw
from tests.harness.probe import MakeProbe, Watch
from tests.harness.stage_process import StartStage
from tests.integration.gas_helpers import reading


def edgegw(
    broker: MosquittoBroker, gateway_id: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_edgegw(broker.env_for("operator", gateway_id), *args)


def test_config_set_prints_the_stage_answer_and_status_shows_it(
    broker: MosquittoBroker, stage: StartStage, watch: Watch, root: str, gateway_id: str
) -> None:
    observer = watch("status/#", "health/#")
    stage("gas-average", EDGEGW_HEALTH_INTERVAL_S="0.5")
    observer.wait_for(lambda m: m.payload == b"online")

    accepted = edgegw(broker, gateway_id, "config", "set", "gas-average", "time_window_s=20")
    assert accepted.returncode == 0, accepted.stderr
    answer = orjson.loads(accepted.stdout)
    assert answer["status"] == "accepted" and answer["applied"]["time_window_s"] == 20
    assert answer["generation"] == 1

    nested = edgegw(broker, gateway_id, "config", "set", "gas-average", "thresholds.co.enter=40")
    answer = orjson.loads(nested.stdout)
    assert nested.returncode == 0 and answer["generation"] == 2
    assert answer["applied"]["time_window_s"] == 20  # the earlier change is kept
    assert answer["applied"]["thresholds"]["co"]["enter"] == 40

    refused = edgegw(broker, gateway_id, "config", "set", "gas-average", "count_window=0")
    assert refused.returncode == 1
    answer = orjson.loads(refused.stdout)
    assert answer["status"] == "rejected" and answer["errors"][0]["field"] == "count_window"

    observer.wait_for(lambda m: m.topic == f"{root}/health/gas-average")
    status = edgegw(broker, gateway_id, "status", "--gateway", gateway_id)
    assert status.returncode == 0, status.stderr
    row = next(line for line in status.stdout.splitlines() if "gas-average" in line)
    assert "online" in row and " ok " in row and row.split()[-2] == "2"


def test_alerts_tails_events_readably(
    broker: MosquittoBroker,
    stage: StartStage,
    probe: MakeProbe,
    watch: Watch,
    root: str,
    gateway_id: str,
) -> None:
    observer = watch("status/#")
    stage("gas-average", EDGEGW_TIME_WINDOW_S="1")
    observer.wait_for(lambda m: m.payload == b"online")
    env = {**os.environ, **broker.env_for("operator", gateway_id)}
    tail = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli.main",
            "alerts",
            "--gateway",
            gateway_id,
            "--count",
            "1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    source = probe("gas-replay")
    assert tail.stderr is not None
    # It says so once subscribed: events published from then on are shown.
    said = [tail.stderr.readline()]
    while said[-1] and "following" not in said[-1] and len(said) < 50:
        said.append(tail.stderr.readline())
    assert "following" in said[-1], said
    start = time.time()
    for index in range(12):
        source.publish(
            f"{root}/sensor/gas/garage", reading("garage", "lpg", 5000.0, ts=start + index)
        )
    out, _ = tail.communicate(timeout=30)
    assert tail.returncode == 0
    assert "NEW" in out and "lpg_high" in out and "garage" in out and "critical" in out


def test_wrong_credentials_give_a_clear_error(broker: MosquittoBroker, gateway_id: str) -> None:
    env = {**broker.env_for("operator", gateway_id), "EDGEGW_MQTT_PASSWORD": "nope"}
    done = run_edgegw(env, "status")
    assert done.returncode == 3
    assert "refused the operator's credentials" in done.stderr


def test_qos_plan_answers_a_dry_run_from_the_running_allocator(
    broker: MosquittoBroker, stage: StartStage, watch: Watch, root: str, gateway_id: str
) -> None:
    observer = watch("qos/+/levels", "status/#")
    stage("bandwidth-allocator")
    stage("gas-replay", EDGEGW_SENSORS="kitchen:co,garage:lpg")
    observer.wait_for(lambda m: m.topic.endswith("/levels"), count=2)
    observer.wait_for(lambda m: m.topic.endswith("status/bandwidth-allocator"))
    done = edgegw(broker, gateway_id, "qos", "plan", "--budget", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gas.kitchen" in done.stdout and "gas.garage" in done.stdout
