"""alert-forwarder as a process: rules, dedup, lifecycle ids, webhooks, dead letters."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest

from schemas.gas import GasEvent
from services.alert_forwarder.alert_messages import alert_message_id
from tests.harness.broker import free_port
from tests.harness.probe import MakeProbe
from tests.harness.stage_process import StartStage


class _Hooks(http.server.ThreadingHTTPServer):
    bodies: list[bytes]


class _HookHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        assert isinstance(self.server, _Hooks)
        self.server.bodies.append(self.rfile.read(length))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_server() -> Iterator[_Hooks]:
    server = _Hooks(("127.0.0.1", free_port()), _HookHandler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _gas_event(type_: str, event_id: str, **extra: object) -> GasEvent:
    fields: dict[str, object] = {
        "source": "gas-average", "type": type_, "event_id": event_id, "sensor": "boiler",
        "gas": "methane", "label": "methane_high", "severity": "critical", "value": 6000.0,
        "peak": 6000.0, "threshold": 5000.0, "start_ts": time.time() - 5, **extra,
    }  # fmt: skip
    return GasEvent.model_validate(fields)


def test_events_become_alerts_once_with_lifecycle_ids_and_webhooks_get_them(
    probe: MakeProbe,
    stage: StartStage,
    root: str,
    webhook_server: _Hooks,
) -> None:
    watcher = probe("operator")
    watcher.subscribe(f"{root}/alert/#")
    watcher.subscribe(f"{root}/deadletter/alert-forwarder")
    watcher.subscribe(f"{root}/status/alert-forwarder")
    watcher.subscribe(f"{root}/metrics/alert-forwarder")
    port = webhook_server.server_address[1]
    config = {"rules": {"rules": [{"label": "co_high", "enabled": False}]}}
    forwarder = stage(
        "alert-forwarder",
        EDGEGW_WEBHOOK_URLS=f"http://127.0.0.1:{port}/hook,http://127.0.0.1:{free_port()}/dead",
        EDGEGW_WEBHOOK_RETRIES="1",
        EDGEGW_WEBHOOK_RETRY_INITIAL_S="0.1",
        EDGEGW_STARTUP_CONFIG=orjson.dumps(config).decode(),
        EDGEGW_HEALTH_INTERVAL_S="0.5",
        # No cloud-bridge here: nothing would confirm, every alert would be re-sent.
        EDGEGW_CONFIRM_WITH_BRIDGE="false",
    )
    watcher.wait_for(
        lambda m: m.topic.endswith("status/alert-forwarder") and m.payload == b"online"
    )
    gas = probe("gas-average")
    event_id = f"boiler-{uuid.uuid4().hex[:6]}"
    new = _gas_event("new", event_id)
    topic = f"{root}/event/boiler"
    assert gas.publish(topic, new.to_bytes()) == 0
    assert gas.publish(topic, new.to_bytes()) == 0  # a redelivery: same message id
    end = _gas_event("end", event_id, end_ts=time.time())
    assert gas.publish(topic, end.to_bytes()) == 0
    # A disabled rule: this label never becomes an alert.
    muted = _gas_event("new", "co-1", gas="co", label="co_high", sensor="kitchen")
    assert gas.publish(f"{root}/event/kitchen", muted.to_bytes()) == 0
    assert gas.publish(topic, b'{"kind": "gas", "type": "new"}') == 0  # invalid

    alerts = watcher.wait_for(lambda m: m.topic == f"{root}/alert/boiler", count=2)
    letters = watcher.wait_for(lambda m: m.topic.endswith("deadletter/alert-forwarder"))
    time.sleep(0.5)
    bodies = [m.json() for m in watcher.received(lambda m: m.topic.startswith(f"{root}/alert/"))]
    assert [b["type"] for b in bodies] == ["new", "end"]
    alert_id = bodies[0]["alert_id"]
    assert [b["id"] for b in bodies] == [
        alert_message_id(alert_id, "new", new.id),
        alert_message_id(alert_id, "end", end.id),
    ]
    assert bodies[0]["severity"] == "critical" and bodies[0]["parts"][0]["event_id"] == event_id
    assert len(alerts) == 2
    assert "event_id" in letters[0].json()["reason"]  # names a missing field

    deadline = time.monotonic() + 10
    while len(webhook_server.bodies) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    posted = [orjson.loads(body) for body in webhook_server.bodies]
    assert [p["id"] for p in posted] == [b["id"] for b in bodies]
    # The dead URL: each alert tried twice, then counted as failed.
    watcher.wait_for(
        lambda m: (
            m.topic.endswith("metrics/alert-forwarder")
            and m.json()["counters"].get("webhook_failed", 0) == 2
            and m.json()["counters"].get("suppressed_duplicate", 0) == 1
            and m.json()["counters"].get("suppressed_disabled", 0) == 1
        )
    )
    assert forwarder.poll() is None


def test_events_with_a_bad_source_never_end_the_stage_and_alerts_take_the_topic_source(
    probe: MakeProbe, stage: StartStage, root: str
) -> None:
    """Issue 13, defect 1: a source that is no topic level in the payload made
    the alert publish raise, the re-send worker die and the stage exit 1."""
    watcher = probe("operator")
    watcher.subscribe(f"{root}/alert/#")
    watcher.subscribe(f"{root}/deadletter/alert-forwarder")
    watcher.subscribe(f"{root}/status/alert-forwarder")
    # With confirmation (the default) and no bridge: every alert stays in the
    # outbox and is re-sent, which is what killed the re-send worker.
    forwarder = stage("alert-forwarder", EDGEGW_CONFIRM_TIMEOUT_S="0.2")
    watcher.wait_for(
        lambda m: m.topic.endswith("status/alert-forwarder") and m.payload == b"online"
    )
    gas = probe("gas-average")
    bad_sources = ["kitchen oven", "kitchen/oven", "k" * 10_000, "a+b", "#"]
    for number, sensor in enumerate(bad_sources):
        event = _gas_event("new", f"bad-{number}").model_dump(mode="json")
        event["sensor"] = sensor
        assert gas.publish(f"{root}/event/kitchen", orjson.dumps(event)) == 0
    # A valid payload whose own sensor id differs from its topic: the topic names it.
    other = _gas_event("new", "other-1", sensor="boiler")
    assert gas.publish(f"{root}/event/kitchen", other.to_bytes()) == 0
    letters = watcher.wait_for(
        lambda m: m.topic.endswith("deadletter/alert-forwarder"), count=len(bad_sources)
    )
    time.sleep(1.5)  # several re-send rounds of the outbox
    assert forwarder.poll() is None
    assert all("sensor" in letter.json()["reason"] for letter in letters)
    watcher.wait_for(lambda m: m.topic == f"{root}/alert/kitchen")

    good = _gas_event("new", "good-1")
    assert gas.publish(f"{root}/event/boiler", good.to_bytes()) == 0
    [alert] = watcher.wait_for(lambda m: m.topic == f"{root}/alert/boiler")
    assert alert.json()["parts"][0]["event_id"] == "good-1"
    assert forwarder.poll() is None
    assert watcher.received(lambda m: m.topic.endswith("status/alert-forwarder"))[-1].payload == (
        b"online"
    )
