"""The broker SIGKILLed and restarted while readings flow at QoS 1.

Uses a broker of its own (same config, same port across the restart), so the
crash does not disturb the other tests' broker.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.harness.broker import MosquittoBroker
from tests.harness.probe import MakeProbe, Probe
from tests.harness.stage_process import StageProcess
from tests.integration.gas_helpers import reading

GATEWAY = "crash"
ROOT = f"edgegw/{GATEWAY}"


def _publish_series(source: Probe, values: list[float], start: float) -> list[str]:
    ids = []
    for index, value in enumerate(values):
        body = reading("boiler", "methane", value, ts=start + index * 0.2)
        source.publish(f"{ROOT}/sensor/gas/boiler", body)
        ids.append(body["id"])
    return ids


def test_stage_reconnects_resubscribes_and_loses_no_reading_after_restart(
    own_broker: MosquittoBroker, own_probe: MakeProbe, tmp_path: Path
) -> None:
    stage = StageProcess(
        "gas-average",
        {
            **own_broker.env_for("gas-average", GATEWAY),
            "EDGEGW_PUBLISH_INTERVAL_S": "0",
            "EDGEGW_TIME_WINDOW_S": "1",
            "EDGEGW_RECONNECT_MAX_S": "2",
        },
        tmp_path,
    )
    try:
        before = own_probe("operator")
        before.subscribe(f"{ROOT}/#")
        before.wait_for(
            lambda m: m.topic == f"{ROOT}/status/gas-average" and m.payload == b"online"
        )
        time.sleep(1.5)  # autosave_interval is 1 s: the session is on disk
        source = own_probe("gas-replay")
        start = time.time()
        # A methane leak opens before the crash...
        _publish_series(source, [100.0] * 5 + [9000.0] * 25, start)
        before.wait_for(lambda m: m.topic == f"{ROOT}/event/boiler", count=1)
        before.wait_for(lambda m: m.topic == f"{ROOT}/gas/boiler/average", count=30)
        time.sleep(1.5)
        source.close()

        own_broker.kill()
        time.sleep(0.5)
        own_broker.start()
        back_at = time.monotonic()

        after = own_probe("operator")
        after.subscribe(f"{ROOT}/#")
        source = own_probe("gas-replay")
        # ...and closes after it: these readings are published once the broker is back.
        published = _publish_series(source, [9500.0] * 10 + [50.0] * 40, start + 6)
        online = after.wait_for(
            lambda m: m.topic == f"{ROOT}/status/gas-average" and m.payload == b"online",
            timeout_s=10,
        )
        assert online[0].at - time.time() + (time.monotonic() - back_at) < 10
        averages = after.wait_for(
            lambda m: m.topic == f"{ROOT}/gas/boiler/average", count=len(published), timeout_s=15
        )
        seen_ids = [m.json()["reading_id"] for m in averages]
        assert set(published) <= set(seen_ids), "a reading published after the restart was lost"
        end = after.wait_for(lambda m: m.topic == f"{ROOT}/event/boiler" and b'"end"' in m.payload)

        events = [
            m.json()
            for probe in (before, after)
            for m in probe.received(lambda m: m.topic == f"{ROOT}/event/boiler")
        ]
        message_ids = [e["id"] for e in events]
        assert len(message_ids) == len(set(message_ids)), "an event message was seen twice"
        assert [e["type"] for e in events].count("new") == 1
        assert len({e["event_id"] for e in events}) == 1
        assert end[0].json()["event_id"] == events[0]["event_id"]
        assert stage.poll() is None
    finally:
        stage.stop()


def test_stage_stops_in_time_when_the_broker_hangs(
    own_broker: MosquittoBroker, own_probe: MakeProbe, tmp_path: Path
) -> None:
    """A frozen broker (SIGSTOP: the socket stays open, nothing is acknowledged)
    holds the `offline` publish for a whole operation timeout (10 s); the stage
    still exits 0 within twice its shutdown grace."""
    grace_s = 1.0
    stage = StageProcess(
        "gas-average",
        {**own_broker.env_for("gas-average", GATEWAY), "EDGEGW_SHUTDOWN_GRACE_S": str(grace_s)},
        tmp_path,
    )
    observer = own_probe("operator")
    try:
        observer.subscribe(f"{ROOT}/status/gas-average")
        observer.wait_for(lambda m: m.payload == b"online")
        own_broker.pause()
        stage.terminate()
        # 2 x grace plus process exit; far below the 10 s a hung publish waits.
        assert stage.wait(timeout_s=2 * grace_s + 3.0) == 0
        assert "door did not close in time" in stage.output()
    finally:
        own_broker.resume()
        stage.stop()
