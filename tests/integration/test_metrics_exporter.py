"""metrics-exporter scraped by a real Prometheus (Debian's `prometheus`, on
loopback, 1 s scrape interval): a PromQL query over its HTTP API returns
every counter that real stages (gas-replay, gas-average) publish on
`metrics/<stage>`."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson

from tests.harness.broker import free_port
from tests.harness.probe import MakeProbe, Seen
from tests.harness.stage_process import StartStage

STAGES = ("gas-replay", "gas-average")
FAST = {"EDGEGW_HEALTH_INTERVAL_S": "0.5"}


def _on(topic: str) -> Callable[[Seen], bool]:
    return lambda message: message.topic == topic


def _counters_of(topic: str) -> Callable[[Seen], bool]:
    return lambda message: message.topic == topic and bool(message.json()["counters"])


def _promql(port: int, query: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = orjson.loads(answer.read())
    assert body["status"] == "success", body
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def _start_prometheus(tmp_path: Path, target_port: int) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus is missing: tools/install_system_deps.sh installs it"
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: edgegw\n    scrape_interval: 1s\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return server, port


def test_prometheus_scrapes_every_stages_counters(
    stage: StartStage, probe: MakeProbe, root: str, gateway_id: str, tmp_path: Path
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/metrics/+")
    exporter_port = free_port()
    stage("metrics-exporter", EDGEGW_HTTP_PORT=str(exporter_port), **FAST)
    for name in STAGES:
        stage(name, **FAST)
    # Every stage has reported counters at least once.
    for name in STAGES:
        observer.wait_for(_counters_of(f"{root}/metrics/{name}"), timeout_s=20)
    first = {
        name: observer.received(_on(f"{root}/metrics/{name}"))[0].json()["counters"]
        for name in STAGES
    }

    server, prometheus_port = _start_prometheus(tmp_path, exporter_port)
    try:
        wanted: dict[str, dict[str, int]] = {}
        found: dict[str, dict[str, float]] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # The counters each stage had reported before this query.
            for name in STAGES:
                reports = observer.received(_on(f"{root}/metrics/{name}"))
                wanted[name] = reports[-1].json()["counters"]
            try:
                series = _promql(prometheus_port, f'edgegw_counter_total{{gateway="{gateway_id}"}}')
            except OSError:
                series = []  # Prometheus still starting
            found = {}
            for sample in series:
                labels = sample["metric"]
                assert isinstance(labels, dict)
                value = sample["value"]
                assert isinstance(value, list)
                found.setdefault(labels["stage"], {})[labels["counter"]] = float(value[1])
            if all(wanted[name].keys() <= found.get(name, {}).keys() for name in STAGES):
                break
            time.sleep(0.5)
        for name in STAGES:
            assert wanted[name].keys() <= found.get(name, {}).keys(), (name, wanted, found)
            # Counters only grow: what Prometheus scraped is at least what was reported first.
            for counter, count in first[name].items():
                assert found[name][counter] >= count, (name, counter)
        assert found["gas-average"]["readings"] > 0
        assert found["gas-replay"]["published"] > 0
        health = _promql(prometheus_port, f'edgegw_stage_healthy{{gateway="{gateway_id}"}}')
        assert {sample["metric"]["stage"] for sample in health} >= set(STAGES)  # type: ignore[index]
    finally:
        server.terminate()
        server.wait(timeout=20)
