"""ha-discovery's payloads against Home Assistant's documented MQTT discovery
keys, its commands as config overrides, and the registry topics outside the
gateway tree.

The schema below is written from Home Assistant's MQTT docs (integrations/mqtt:
"Device discovery payload", "Supported abbreviations in MQTT discovery
messages", and the sensor, binary_sensor, event, number, select and switch
platform pages): unknown keys are an error here although Home Assistant only
ignores them, so a misspelt key fails this test instead of silently doing
nothing in someone's Home Assistant.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from schemas.qos import QosLevel, QosLevels
from schemas.topics import HA_DEVICE_CONFIG, HA_STATUS, REGISTRY
from services.bandwidth_allocator.planning import pinned
from services.camera_capture.settings import CaptureConfig
from services.ha_discovery.commands import (
    BadCommand,
    budget_override,
    level_override,
    switch_override,
    switch_state,
)
from services.ha_discovery.devices import GatewayView, discovery_payloads
from services.object_detector.settings import DetectorConfig

# -- Home Assistant's abbreviations (the subset of its list these platforms use) --

ABBREVIATIONS = {
    "avty": "availability",
    "avty_mode": "availability_mode",
    "avty_t": "availability_topic",
    "avty_tpl": "availability_template",
    "cmd_t": "command_topic",
    "cmd_tpl": "command_template",
    "cmps": "components",
    "dev": "device",
    "dev_cla": "device_class",
    "e": "encoding",
    "en": "enabled_by_default",
    "ent_cat": "entity_category",
    "ent_pic": "entity_picture",
    "evt_typ": "event_types",
    "exp_aft": "expire_after",
    "frc_upd": "force_update",
    "ic": "icon",
    "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "max": "max",
    "min": "min",
    "mode": "mode",
    "name": "name",
    "o": "origin",
    "obj_id": "object_id",
    "def_ent_id": "default_entity_id",
    "off_dly": "off_delay",
    "ops": "options",
    "opt": "optimistic",
    "p": "platform",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "pl_off": "payload_off",
    "pl_on": "payload_on",
    "pl_rst": "payload_reset",
    "ret": "retain",
    "stat_cla": "state_class",
    "stat_off": "state_off",
    "stat_on": "state_on",
    "stat_t": "state_topic",
    "step": "step",
    "sug_dsp_prc": "suggested_display_precision",
    "t": "topic",
    "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template",
}
DEVICE_ABBREVIATIONS = {
    "cns": "connections",
    "cu": "configuration_url",
    "hw": "hw_version",
    "ids": "identifiers",
    "mdl": "model",
    "mdl_id": "model_id",
    "mf": "manufacturer",
    "name": "name",
    "sa": "suggested_area",
    "sn": "serial_number",
    "sw": "sw_version",
}
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}


def expand(values: dict[str, Any], abbreviations: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        full = abbreviations.get(key, key)
        assert full not in out, f"{key!r}: {full!r} given twice"
        out[full] = value
    return out


def expand_payload(payload: dict[str, Any]) -> dict[str, Any]:
    root = expand(payload, ABBREVIATIONS)
    root["device"] = expand(root["device"], DEVICE_ABBREVIATIONS)
    root["origin"] = expand(root["origin"], ORIGIN_ABBREVIATIONS)
    components = {}
    for key, component in root.get("components", {}).items():
        expanded = expand(component, ABBREVIATIONS)
        if "availability" in expanded:
            expanded["availability"] = [
                expand(entry, ABBREVIATIONS) for entry in expanded["availability"]
            ]
        components[key] = expanded
    root["components"] = components
    if "availability" in root:
        root["availability"] = [expand(entry, ABBREVIATIONS) for entry in root["availability"]]
    return root


# -- the schema, from Home Assistant's docs -------------------------------------

Strict = ConfigDict(extra="forbid", frozen=True)
Topic = Annotated[str, Field(min_length=1, pattern=r"^[^#+]+$")]  # no wildcards in a topic


class Availability(BaseModel):
    model_config = Strict
    topic: Topic
    payload_available: str = "online"
    payload_not_available: str = "offline"
    value_template: str | None = None


class Device(BaseModel):
    model_config = Strict
    identifiers: list[str] | str
    connections: list[tuple[str, str]] | None = None
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    model_id: str | None = None
    hw_version: str | None = None
    sw_version: str | None = None
    serial_number: str | None = None
    suggested_area: str | None = None
    configuration_url: str | None = None
    via_device: str | None = None


class Origin(BaseModel):
    model_config = Strict
    name: str
    sw_version: str | None = None
    support_url: str | None = None


class EntityBase(BaseModel):
    """Options every MQTT entity platform documents."""

    model_config = Strict
    name: str | None = None
    unique_id: str  # required for device-based discovery
    availability: list[Availability] | None = None
    availability_mode: Literal["all", "any", "latest"] | None = None
    availability_template: str | None = None
    availability_topic: Topic | None = None
    payload_available: str | None = None
    payload_not_available: str | None = None
    default_entity_id: str | None = None
    object_id: str | None = None
    enabled_by_default: bool | None = None
    encoding: str | None = None
    entity_category: Literal["config", "diagnostic"] | None = None
    entity_picture: str | None = None
    icon: str | None = None
    json_attributes_template: str | None = None
    json_attributes_topic: Topic | None = None
    qos: Literal[0, 1, 2] | None = None


class Sensor(EntityBase):
    platform: Literal["sensor"]
    state_topic: Topic
    value_template: str | None = None
    unit_of_measurement: str | None = None
    device_class: str | None = None
    state_class: Literal["measurement", "total", "total_increasing"] | None = None
    suggested_display_precision: int | None = None
    expire_after: int | None = None
    force_update: bool | None = None
    options: list[str] | None = None


class BinarySensor(EntityBase):
    platform: Literal["binary_sensor"]
    state_topic: Topic
    value_template: str | None = None
    payload_on: str = "ON"
    payload_off: str = "OFF"
    device_class: str | None = None
    expire_after: int | None = None
    force_update: bool | None = None
    off_delay: int | None = None


class Event(EntityBase):
    platform: Literal["event"]
    state_topic: Topic
    event_types: list[str] = Field(min_length=1)
    value_template: str | None = None
    device_class: Literal["button", "doorbell", "motion"] | None = None


class Number(EntityBase):
    platform: Literal["number"]
    command_topic: Topic
    command_template: str | None = None
    state_topic: Topic | None = None
    value_template: str | None = None
    min: float = 1
    max: float = 100
    step: float = 1
    mode: Literal["auto", "box", "slider"] = "auto"
    unit_of_measurement: str | None = None
    device_class: str | None = None
    optimistic: bool | None = None
    retain: bool | None = None
    payload_reset: str | None = None


class Select(EntityBase):
    platform: Literal["select"]
    command_topic: Topic
    options: list[str] = Field(min_length=1)
    command_template: str | None = None
    state_topic: Topic | None = None
    value_template: str | None = None
    optimistic: bool | None = None
    retain: bool | None = None


class Switch(EntityBase):
    platform: Literal["switch"]
    command_topic: Topic | None = None
    state_topic: Topic | None = None
    value_template: str | None = None
    payload_on: str = "ON"
    payload_off: str = "OFF"
    state_on: str | None = None
    state_off: str | None = None
    device_class: Literal["outlet", "switch"] | None = None
    optimistic: bool | None = None
    retain: bool | None = None


Component = Annotated[
    Sensor | BinarySensor | Event | Number | Select | Switch, Field(discriminator="platform")
]


class DeviceDiscovery(BaseModel):
    """`<prefix>/device/<object_id>/config`: device and origin are required
    and shared; availability, state_topic, command_topic, qos and encoding
    may be shared; each component names its platform."""

    model_config = Strict
    device: Device
    origin: Origin
    components: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")], Component]
    availability: list[Availability] | None = None
    availability_mode: Literal["all", "any", "latest"] | None = None
    availability_topic: Topic | None = None
    state_topic: Topic | None = None
    command_topic: Topic | None = None
    qos: Literal[0, 1, 2] | None = None
    encoding: str | None = None


# -- the gateway the tests describe -----------------------------------------------

ROOT = "edgegw/gw1"


def busy_view() -> GatewayView:
    view = GatewayView(ROOT, "gw1", "0.1.0")
    view.levels = {
        "camera.yard": ("2fps_320", "10fps_1280"),
        "detector.yard": ("results", "snapshots"),
        "audio.kitchen": ("stride4", "stride1"),
        "gas.kitchen-1": ("slow", "fast"),
    }
    view.gases = {"kitchen-1": {"co", "methane"}, "garage": {"co2"}}
    view.places = {"yard"}
    return view


def _registry_instance(topic: str) -> str | None:
    for spec in REGISTRY:
        root = ROOT if spec.rooted else ""
        if spec.match(root, topic) is not None:
            return spec.name
    return None


def test_every_discovery_payload_validates_against_home_assistants_keys() -> None:
    payloads = discovery_payloads(busy_view(), max_devices=100)
    assert len(payloads) == 5  # the gateway, camera yard, mic kitchen, gas kitchen-1, gas garage
    platforms: set[str] = set()
    for device_id, payload in payloads.items():
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", device_id)
        HA_DEVICE_CONFIG.topic("", device=device_id)  # a valid registry topic
        parsed = DeviceDiscovery.model_validate(expand_payload(payload))
        unique_ids = [component.unique_id for component in parsed.components.values()]
        assert len(set(unique_ids)) == len(unique_ids)
        for component in parsed.components.values():
            platforms.add(component.platform)
            for name in ("state_topic", "command_topic", "json_attributes_topic"):
                topic = getattr(component, name, None)
                if topic is not None:
                    assert _registry_instance(topic), f"{topic} is not a registry topic"
            for entry in component.availability or []:
                assert _registry_instance(entry.topic) == "status"
    assert platforms == {"sensor", "binary_sensor", "event", "number", "select", "switch"}


def test_the_schema_refuses_a_key_home_assistant_does_not_document() -> None:
    payload = discovery_payloads(busy_view(), max_devices=100)["edgegw_gw1"]
    wrong = {**payload, "cmps": {**payload["cmps"]}}
    wrong["cmps"]["budget"] = {**wrong["cmps"]["budget"], "stat_topic": "x"}  # not a key
    with pytest.raises(ValueError, match="stat_topic"):
        DeviceDiscovery.model_validate(expand_payload(wrong))


def test_entities_the_issue_asks_for() -> None:
    payloads = discovery_payloads(busy_view(), max_devices=100)
    camera = payloads["edgegw_gw1_camera_yard"]["cmps"]
    assert {"detect", "snapshots", "motion", "level_camera", "level_detector"} <= camera.keys()
    assert camera["detect"]["cmd_t"] == f"{ROOT}/camera/yard/detect/set"
    assert camera["detect"]["stat_t"] == f"{ROOT}/camera/yard/detect/state"
    assert camera["level_camera"]["ops"] == ["auto", "2fps_320", "10fps_1280"]
    gas = payloads["edgegw_gw1_gas_kitchen-1"]["cmps"]
    assert gas["average_co"]["dev_cla"] == "carbon_monoxide"
    assert gas["average_co"]["unit_of_meas"] == "ppm"
    assert "dev_cla" not in gas["average_methane"]  # Home Assistant has no class for it
    gateway = payloads["edgegw_gw1"]["cmps"]
    assert gateway["budget"]["p"] == "number"
    assert {"uplink_used", "uplink_budget", "incident_yard", "incident_yard_event"} <= (
        gateway.keys()
    )


def test_a_withdrawn_analytic_or_a_gone_stage_takes_its_device_away() -> None:
    view = busy_view()
    del view.levels["audio.kitchen"]
    assert "edgegw_gw1_mic_kitchen" not in discovery_payloads(view, max_devices=100)
    assert view.forget_stage("gas-average")
    assert "edgegw_gw1_gas_garage" not in discovery_payloads(view, max_devices=100)


def test_ha_topics_are_outside_the_gateway_tree() -> None:
    assert HA_STATUS.topic(ROOT) == "homeassistant/status"
    assert HA_DEVICE_CONFIG.filter(ROOT) == "homeassistant/device/+/config"
    assert HA_DEVICE_CONFIG.match("edgegw/+", "homeassistant/device/abc/config") == {
        "device": "abc"
    }


# -- commands -------------------------------------------------------------------


def test_a_switch_changes_one_camera_and_keeps_the_rest_of_the_override() -> None:
    override = {"detection_min_score": 0.7, "detect_by_camera": {"gate": False}}
    stage, updated = switch_override(override, "yard", "detect", "OFF")
    assert stage == "object-detector"
    assert updated == {
        "detection_min_score": 0.7,
        "detect_by_camera": {"gate": False, "yard": False},
    }
    assert override["detect_by_camera"] == {"gate": False}  # not changed in place
    applied = DetectorConfig.model_validate(updated).model_dump(mode="json")
    assert switch_state(applied, "yard", "detect") == "OFF"
    assert switch_state(applied, "other", "snapshots") == "ON"  # the stage-wide value
    with pytest.raises(BadCommand):
        switch_override({}, "yard", "detect", "maybe")


def test_motion_switch_is_per_camera() -> None:
    _, updated = switch_override({}, "yard", "motion", "ON")
    config = CaptureConfig.model_validate(updated)
    assert config.for_camera("yard").motion_enabled
    assert not config.for_camera("gate").motion_enabled


def test_budget_and_level_commands() -> None:
    assert budget_override({"solver": "dp"}, "250") == (
        "bandwidth-allocator",
        {"solver": "dp", "budget_kbps": 250},
    )
    for bad in ("nan", "-1", "lots"):
        with pytest.raises(BadCommand):
            budget_override({}, bad)
    _, pinned_override = level_override({}, "camera.yard", "2fps_320")
    assert pinned_override == {"pinned_levels": {"camera.yard": "2fps_320"}}
    _, unpinned = level_override(pinned_override, "camera.yard", "auto")
    assert unpinned == {"pinned_levels": {}}


def test_a_pin_leaves_the_solver_one_level() -> None:
    offer = QosLevels(
        source="camera-capture",
        analytic="camera.yard",
        levels=[
            QosLevel(name="low", cost_kbps=10, utility=0.2),
            QosLevel(name="high", cost_kbps=90, utility=1.0),
        ],
    )
    assert [level.name for level in pinned(offer, "low").levels] == ["low"]
    assert pinned(offer, "gone") == offer
    assert pinned(offer, None) == offer
