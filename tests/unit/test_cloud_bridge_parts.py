"""cloud-bridge pieces that need no broker: settings, usage message, topics."""

from __future__ import annotations

import pytest

from services.cloud_bridge.settings import CloudBridgeSettings, CloudSettings
from services.cloud_bridge.spool import Spool
from services.cloud_bridge.stage import cloud_settings_for
from services.cloud_bridge.uplink import topic_class_and_analytic
from services.cloud_bridge.upload_accounting import UploadAccounting
from services.cloud_bridge.usage_report import usage_message


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


def test_usage_message_reports_bytes_losses_and_spool(tmp_path: pytest.TempPathFactory) -> None:
    accounting = UploadAccounting(100.0, now=0.0, window_s=10.0)
    accounting.record("alert", "kitchen", 500, now=1.0)
    accounting.record("summary", "gas-average", 300, now=1.5)
    spool = Spool(tmp_path / "s.db", max_bytes=200)  # type: ignore[operator]
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
