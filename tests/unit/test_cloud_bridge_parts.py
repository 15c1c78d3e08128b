"""cloud-bridge pieces that need no broker: settings, usage message, topics,
the uplink's bookkeeping of sends."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from schemas.service import ConfigState
from schemas.topics import CONFIG_STATE
from services.cloud_bridge.settings import CloudBridgeSettings, CloudSettings
from services.cloud_bridge.spool import Spool
from services.cloud_bridge.stage import CloudBridgeStage, cloud_settings_for
from services.cloud_bridge.token_bucket import UplinkPacer
from services.cloud_bridge.uplink import Uplink, UplinkPolicy, topic_class_and_analytic
from services.cloud_bridge.upload_accounting import UploadAccounting
from services.cloud_bridge.usage_report import usage_message
from services.common.door import MqttDoor, Received
from services.common.settings import StageSettings
from services.common.stage_metrics import StageMetrics


def test_cloud_settings_read_their_own_prefix_and_take_the_gateway_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGEGW_GATEWAY_ID", "site7")
    monkeypatch.setenv("EDGEGW_MQTT_HOST", "gateway.local")
    monkeypatch.setenv("EDGEGW_CLOUD_MQTT_HOST", "cloud.example")
    monkeypatch.setenv("EDGEGW_CLOUD_MQTT_TLS_CA", "/ca.pem")
    cloud = cloud_settings_for(CloudBridgeSettings(), CloudSettings())
    assert (cloud.mqtt_host, cloud.mqtt_port, cloud.mqtt_tls_ca) == (
        "cloud.example", 8883, "/ca.pem"
    )  # fmt: skip
    assert cloud.root == "edgegw/site7"


def test_topic_class_and_analytic() -> None:
    assert topic_class_and_analytic("edgegw/g", "edgegw/g/alert/kitchen") == ("alert", "kitchen")
    assert topic_class_and_analytic("edgegw/g", "edgegw/g/status/x/config") == ("status", "x")


def test_usage_message_reports_bytes_losses_and_spool(tmp_path: Path) -> None:
    accounting = UploadAccounting(100.0, now=0.0, window_s=10.0)
    accounting.record("alert", "kitchen", 500, now=1.0)
    accounting.record("summary", "gas-average", 300, now=1.5)
    spool = Spool(tmp_path / "s.db", max_bytes=200)
    spool.append("t/summary/a", b"x" * 150, "summary", "s1")
    spool.append("t/summary/a", b"y" * 150, "summary", "s2")  # evicts s1
    usage = usage_message(
        accounting.snapshot(2.0), spool.stats(), cloud_connected=False, budget_source="config"
    )
    spool.close()
    assert usage.bytes_by_class == {"alert": 500, "summary": 300}
    assert usage.messages_by_class == {"alert": 1, "summary": 1}
    assert usage.losses == {"summary_evicted": 1}
    assert (usage.spool_entries, usage.spool_max_bytes) == (1, 200)
    assert usage.budget_kbps == 100.0 and usage.used_kbps > 0


async def test_a_send_cancelled_before_it_starts_gives_back_its_claim_and_window(
    tmp_path: Path,
) -> None:
    # The link breaks right after a send task was created: the send loop
    # cancels it before its first step. Its message must not stay claimed
    # ("being sent"), or the backlog skips it forever and it never leaves.
    policy = UplinkPolicy(
        live_queue=10, drain_page=10, publish_timeout_s=1.0, mark_every_s=0.1, in_flight=2
    )
    with Spool(tmp_path / "spool.db", max_bytes=1 << 20) as spool:
        spool.append("edgegw/gw/alert/kitchen", b"{}", "alert", "a1")
        message = spool.oldest(1)[0]
        settings = StageSettings(mqtt_password="x", gateway_id="gw")
        cloud = MqttDoor(settings, "cloud-bridge")  # never connected: nothing is sent
        now = time.monotonic()
        uplink = Uplink(
            spool,
            cloud,
            UplinkPacer(1000.0, now),
            UploadAccounting(1000.0, now),
            StageMetrics(),
            policy,
        )
        # White-box (SLF001): drives the send window and an in-flight send by hand.
        async with asyncio.TaskGroup() as tasks:
            for _ in range(policy.in_flight):
                await uplink._window.acquire()  # noqa: SLF001
            uplink._start_send(message, "live", 100, tasks)  # noqa: SLF001
            uplink._window.release()  # noqa: SLF001 - the other slot; the task holds one
            await uplink._abandon_in_flight()  # noqa: SLF001
        assert uplink._claimed == set()  # noqa: SLF001
        assert not uplink._in_flight  # noqa: SLF001
        for _ in range(policy.in_flight):  # every window slot is back
            await asyncio.wait_for(uplink._window.acquire(), 1)  # noqa: SLF001
        assert [m.message_id for m in spool.oldest(10)] == ["a1"]  # still to send


async def test_a_cleared_config_answer_is_relayed_as_a_clear(tmp_path: Path) -> None:
    """Issue 13, defect 10: a cleared retained status/<stage>/config (the
    handler gets None) made the bridge's handler fail."""
    settings = CloudBridgeSettings(spool_path=tmp_path / "spool.db")
    spool = Spool(settings.spool_path, settings.spool_max_bytes, settings.ttl_s())
    try:
        local = MqttDoor(settings, "cloud-bridge")
        cloud = MqttDoor(settings, "cloud-bridge", root=settings.root)
        bridge = CloudBridgeStage(local, cloud, settings, spool)
        topic = CONFIG_STATE.topic(settings.root, stage="gas-average")
        cleared: Received[ConfigState | None] = Received(
            topic, {"stage": "gas-average"}, None, b"", True, {}
        )
        await bridge._on_config_state(cleared)  # noqa: SLF001 - the handler alone
        [spooled] = spool.oldest(10)
        assert (spooled.topic, spooled.payload, spooled.retain) == (topic, b"", True)
    finally:
        spool.close()
