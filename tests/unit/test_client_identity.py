"""Which identity and client id a stage presents, and what it says when
another connection takes its session over."""

from __future__ import annotations

import logging
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from services.cloud_bridge.settings import CloudSettings
from services.common.door import MqttDoor
from services.common.settings import StageSettings, load_settings
from services.web.settings import WebSettings


def _lost(reason: int) -> aiomqtt.MqttError:
    """A lost connection as aiomqtt raises it from the message iterator."""
    code = ReasonCode(PacketTypes.DISCONNECT, identifier=reason)
    error = aiomqtt.MqttError("Disconnected during message iteration")
    error.__cause__ = aiomqtt.MqttCodeError(code, "Unexpected disconnection")
    return error


def test_a_stage_presents_its_identity_as_username_and_client_id() -> None:
    settings = StageSettings(mqtt_password="x", gateway_id="gw", instance="a")
    assert settings.mqtt_identity("gas-average") == "gas-average"
    assert settings.mqtt_client_id("gas-average") == "gas-average"
    replica = StageSettings(mqtt_password="x", replica=2)
    assert replica.mqtt_client_id("object-detector") == "object-detector.2"
    assert replica.instance == "2"  # not the default "0" another replica says
    named = StageSettings(mqtt_password="x", mqtt_username="gas-average.site1")
    assert named.mqtt_client_id("gas-average") == "gas-average.site1"
    assert named.mqtt_client_id("gas-average", side="aux") == "gas-average.site1.aux"
    # The cloud broker binds nothing of ours and serves many gateways.
    cloud = CloudSettings(mqtt_password="x", mqtt_username="edge", gateway_id="gw", instance="0")
    assert cloud.mqtt_client_id("cloud-bridge") == "edge-gw-0"


def test_a_replica_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEGW_REPLICA", "3")
    assert (StageSettings().mqtt_identity("object-detector"), StageSettings().instance) == (
        "object-detector.3",
        "3",
    )
    monkeypatch.setenv("EDGEGW_INSTANCE", "hostname-given")
    assert StageSettings().instance == "hostname-given"


def test_secrets_from_files_named_by_file_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Swarm and Kubernetes secrets are files: /run/secrets/<name>.
    (tmp_path / "mqtt").write_text("s3cret\n")
    (tmp_path / "cloud").write_text("cl0ud")
    (tmp_path / "web").write_text("w3b\r\n")
    monkeypatch.setenv("EDGEGW_MQTT_PASSWORD_FILE", str(tmp_path / "mqtt"))
    monkeypatch.setenv("EDGEGW_CLOUD_MQTT_PASSWORD_FILE", str(tmp_path / "cloud"))
    monkeypatch.setenv("EDGEGW_WEB_PASSWORD_FILE", str(tmp_path / "web"))
    assert StageSettings().mqtt_password.get_secret_value() == "s3cret"
    assert CloudSettings().mqtt_password.get_secret_value() == "cl0ud"
    assert WebSettings().web_password.get_secret_value() == "w3b"
    # Only secrets: any other field named with _FILE is not read from a file.
    monkeypatch.setenv("EDGEGW_MQTT_HOST_FILE", str(tmp_path / "mqtt"))
    assert StageSettings().mqtt_host == "localhost"


def test_a_secret_file_that_cannot_be_read_or_is_doubly_given_stops_the_stage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGEGW_MQTT_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(SystemExit) as stopped:
        load_settings(StageSettings)
    assert stopped.value.code == 2
    assert "EDGEGW_MQTT_PASSWORD_FILE" in capsys.readouterr().err
    (tmp_path / "absent").write_text("x")
    monkeypatch.setenv("EDGEGW_MQTT_PASSWORD", "y")
    with pytest.raises(SystemExit):
        load_settings(StageSettings)
    assert "both set" in capsys.readouterr().err


async def test_doors_use_bound_ids_except_the_operator() -> None:
    settings = StageSettings(mqtt_password="x", gateway_id="gw", instance="a")
    assert MqttDoor(settings, "gas-average").client_id == "gas-average"
    side = MqttDoor(settings, "alert-forwarder", announce=False)
    assert (side.identity, side.client_id) == ("alert-forwarder.aux", "alert-forwarder.aux")
    # The health probe runs beside the stage and its receipt reader: a third id.
    probe = MqttDoor(settings, "alert-forwarder", announce=False, side="health")
    assert (probe.identity, probe.client_id) == ("alert-forwarder.health",) * 2
    first = MqttDoor(settings, "operator", announce=False)
    second = MqttDoor(settings, "operator", announce=False)
    assert first.identity == "operator" and first.client_id != second.client_id


async def test_a_session_taken_over_is_an_error_and_degrades_health(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = StageSettings(mqtt_password="x", auth_retry_s=7.0)
    door = MqttDoor(settings, "gas-average")
    assert door.report_lost_connection(_lost(128)) is None  # an ordinary loss: the usual backoff
    assert door.metrics.degraded is None
    with caplog.at_level(logging.ERROR):
        assert door.report_lost_connection(_lost(142)) == 7.0  # no kicking back at once
    assert door.metrics.degraded is not None and "session taken over" in door.metrics.degraded
    assert door.metrics.counters["session_taken_over"] == 1
    assert [r.levelname for r in caplog.records if "taken over" in r.getMessage()] == ["ERROR"]
