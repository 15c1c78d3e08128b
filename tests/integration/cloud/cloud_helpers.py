"""Alerts and waits shared by the cloud-bridge tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson

from schemas.alerts import Alert, AlertPart, Summary
from schemas.envelope import lifecycle_message_id
from services.cloud_bridge.spool import Spool
from tests.harness.probe import Probe, Seen
from tests.integration.cloud.cloud_probe import CloudProbe


def alert_bytes(
    number: int, source: str = "kitchen", pad: int = 0, prefix: str = ""
) -> tuple[str, bytes]:
    """(message id, payload) of the `number`-th test alert (`prefix`: of its alert id)."""
    alert_id = f"{prefix}a{number:06d}"
    alert = Alert(
        source="alert-forwarder",
        id=lifecycle_message_id(alert_id, 0),
        type="new",
        alert_id=alert_id,
        label="co_high",
        severity="critical",
        parts=[AlertPart(source=source, kind="gas", event_id=f"e{number}", label="co_high")],
        start_ts=time.time(),
        summary="x" * pad,
    )
    return alert.id, alert.to_bytes()


def summary_bytes(number: int, pad: int = 0) -> tuple[str, bytes]:
    now = time.time()
    summary = Summary(
        source="gas-average",
        id=f"s{number:06d}",
        analytic="gas-average",
        period_s=60,
        start_ts=now - 60,
        end_ts=now,
        values={"n": number, "pad": "y" * pad},
    )
    return summary.id, summary.to_bytes()


def publish_until_acked(probe: Probe, topic: str, payload: bytes, timeout_s: float = 30) -> None:
    """QoS 1 publish, repeated until the broker confirms it (same id: harmless)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if probe.publish(topic, payload) == 0:
                return
        except (RuntimeError, ValueError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{topic}: never acknowledged")


def ids_in_order(messages: list[Seen]) -> list[str]:
    """Message ids in arrival order, each once (consumers deduplicate by id)."""
    seen: dict[str, None] = {}
    for message in messages:
        seen.setdefault(orjson.loads(message.payload)["id"], None)
    return list(seen)


def on_topic(prefix: str) -> Callable[[Seen], bool]:
    return lambda m: m.topic.startswith(prefix)


def wait_for_ids(
    watcher: CloudProbe, prefix: str, wanted: list[str], timeout_s: float
) -> list[Seen]:
    """Wait until every id in `wanted` arrived on topics under `prefix`."""
    want = set(wanted)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = watcher.received(on_topic(prefix))
        if want <= set(ids_in_order(found)):
            return found
        time.sleep(0.05)
    found = watcher.received(on_topic(prefix))
    missing = sorted(want - set(ids_in_order(found)))
    raise AssertionError(f"{len(missing)} of {len(want)} never reached the cloud: {missing[:20]}")


def cloud_kbps(
    watcher: CloudProbe, where: Callable[[Seen], bool], start: float, window_s: float
) -> float:
    """kbit/s (topic + payload) of what matched `where` and arrived in
    [start, start + window_s), waiting for the window to end."""
    end = start + window_s
    time.sleep(max(0.0, end - time.time()))
    arrived = watcher.received(lambda m: where(m) and start <= m.at < end)
    return sum(len(m.topic) + len(m.payload) for m in arrived) * 8 / 1000 / window_s


def fill_spool_with_summaries(path: Path, root: str, count: int, pad: int = 0) -> list[str]:
    """A spool at `path` holding `count` gas summaries (a backlog); their ids in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = []
    with Spool(path, 64 * 1024 * 1024) as spool:
        for number in range(count):
            message_id, payload = summary_bytes(number, pad=pad)
            spool.append(f"{root}/summary/gas-average", payload, "summary", message_id)
            ids.append(message_id)
    return ids
