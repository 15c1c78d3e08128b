"""Settings read from EDGEGW_* variables (services/common/settings.py): the
part of pydantic-settings the stages relied on, kept without the package."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from services.bandwidth_allocator.settings import BandwidthAllocatorSettings
from services.camera_capture.settings import CameraCaptureSettings
from services.cloud_bridge.settings import CloudSettings
from services.common.settings import SettingsError, StageSettings, load_settings


def test_a_variable_sets_its_field_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEGW_MQTT_PORT", "1884")
    monkeypatch.setenv("edgegw_gateway_id", "site7")
    settings = StageSettings()
    assert (settings.mqtt_port, settings.gateway_id) == (1884, "site7")


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEGW_MQTT_PORT", "1884")
    assert StageSettings(mqtt_port=1999).mqtt_port == 1999


def test_each_prefix_reads_only_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEGW_MQTT_PORT", "1884")
    monkeypatch.setenv("EDGEGW_CLOUD_MQTT_PORT", "9883")
    assert StageSettings().mqtt_port == 1884
    assert CloudSettings().mqtt_port == 9883


def test_dicts_and_tuples_come_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEGW_WEIGHTS", '{"gas.co2": 2.5}')
    monkeypatch.setenv("EDGEGW_LEVEL_FPS", "[1, 4]")
    assert BandwidthAllocatorSettings().weights == {"gas.co2": 2.5}
    assert CameraCaptureSettings(source="0").level_fps == (1.0, 4.0)


def test_json_that_does_not_parse_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEGW_WEIGHTS", "{gas.co2: 2.5")
    with pytest.raises(SettingsError, match="EDGEGW_WEIGHTS is not valid JSON"):
        BandwidthAllocatorSettings()


def test_a_bad_value_stops_the_stage_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGEGW_MQTT_PORT", "70000")
    with pytest.raises(SystemExit) as stopped:
        load_settings(StageSettings)
    assert stopped.value.code == 2
    assert "invalid setting EDGEGW_MQTT_PORT" in capsys.readouterr().err


def test_defaults_are_validated_like_values() -> None:
    class Bounded(StageSettings):
        threshold: int = Field(default=-1, ge=0)  # its own default is out of bounds

    with pytest.raises(ValidationError, match="threshold"):
        Bounded()
