"""`edgegw top` and the `edgegw status` table against a real broker and real stages."""

from __future__ import annotations

from tests.harness.broker import MosquittoBroker
from tests.harness.probe import MakeProbe
from tests.harness.stage_process import StartStage
from tests.integration.test_cli import edgegw


def test_top_shows_live_rates_and_memory_of_each_stage(
    broker: MosquittoBroker, stage: StartStage, probe: MakeProbe, root: str, gateway_id: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/metrics/+")
    stage("gas-replay", EDGEGW_HEALTH_INTERVAL_S="0.5", EDGEGW_SENSORS="kitchen:co")
    stage("gas-average", EDGEGW_HEALTH_INTERVAL_S="0.5")
    for name in ("gas-replay", "gas-average"):
        observer.wait_for(lambda m, name=name: m.topic == f"{root}/metrics/{name}")  # type: ignore[misc]
    done = edgegw(
        broker, gateway_id, "top", "--gateway", gateway_id, "--interval", "1.5", "--count", "2"
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().split("\n\n")[-1].splitlines()
    assert last[0].split()[:4] == ["gateway", "stage", "status", "health"]
    rows = {line.split()[1]: line.split() for line in last[1:]}
    for name in ("gas-replay", "gas-average"):
        row = rows[name]
        assert row[2] == "online" and row[3] == "ok"
        assert float(row[9]) > 5  # rss MB: a Python process
    assert float(rows["gas-replay"][5]) > 0  # readings published per second
    assert float(rows["gas-average"][4]) > 0  # readings received per second
