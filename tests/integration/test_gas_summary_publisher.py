"""The gas summary publisher on a real broker, as gas-average's door runs it."""

from __future__ import annotations

import asyncio

from schemas.gas import GasReading
from schemas.topics import GAS_AVERAGE
from services.common.door import MqttDoor
from services.gas_average.summary import GasSummaryPublisher
from tests.harness.broker import MosquittoBroker
from tests.harness.probe import MakeProbe


async def test_summary_of_each_period_is_published_on_summary_gas_average(
    broker: MosquittoBroker, probe: MakeProbe, gateway_id: str, root: str
) -> None:
    watcher = probe("operator")
    watcher.subscribe(f"{root}/summary/#")
    settings = broker.door_settings(GAS_AVERAGE, gateway_id)
    door = MqttDoor(settings, GAS_AVERAGE)
    publisher = GasSummaryPublisher(door, period_s=0.5)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(door.run())
        worker = tasks.create_task(publisher.run(stop))
        await asyncio.wait_for(door.connected.wait(), 10)
        for value in (10.0, 20.0, 30.0):
            reading = GasReading(source="gas-replay", sensor="kitchen", gas="co", value=value)
            publisher.observe(reading)
        found = await asyncio.to_thread(watcher.wait_for, lambda m: True, 1, 10.0)
        await asyncio.sleep(1.2)  # two empty periods: nothing more is published
        stop.set()
        await worker
        door.close()
    summary = found[0].json()
    assert found[0].topic == f"{root}/summary/gas-average"
    assert summary["analytic"] == "gas-average" and summary["period_s"] == 0.5
    assert summary["values"]["series"]["kitchen/co"] == {
        "n": 3, "min": 10.0, "mean": 20.0, "max": 30.0
    }  # fmt: skip
    assert len(watcher.received()) == 1
