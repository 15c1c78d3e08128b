"""gas-average against a real broker: averages, events, config, dead letters."""

from __future__ import annotations

import time

from tests.harness.probe import MakeProbe
from tests.harness.stage_process import StartStage
from tests.integration.gas_helpers import reading


def test_readings_become_averages_and_a_leak_becomes_one_event(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#")
    process = stage(
        "gas-average",
        EDGEGW_PUBLISH_INTERVAL_S="0",
        EDGEGW_TIME_WINDOW_S="2",
    )
    observer.wait_for(lambda m: m.topic == f"{root}/status/gas-average" and m.payload == b"online")
    source = probe("gas-replay")
    start = time.time()
    values = [5.0] * 5 + [120.0] * 20 + [200.0] * 10 + [3.0] * 30
    for index, value in enumerate(values):
        body = reading("kitchen", "co", value, ts=start + index * 0.5)
        source.publish(f"{root}/sensor/gas/kitchen", body)
    averages = observer.wait_for(
        lambda m: m.topic == f"{root}/gas/kitchen/average", count=len(values)
    )
    last = averages[-1].json()
    assert last["sensor"] == "kitchen" and last["gas"] == "co"
    assert last["count_samples"] == 10 and abs(last["count_average"] - 3.0) < 1e-9
    found = observer.wait_for(lambda m: m.topic == f"{root}/event/kitchen", count=3)
    events = [m.json() for m in found]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "new" and kinds[-1] == "end", kinds
    assert len({e["event_id"] for e in events}) == 1
    assert len({e["id"] for e in events}) == len(events)
    assert events[-1]["peak"] >= 150
    assert process.poll() is None
