"""What Home Assistant should see, from what the gateway says about itself.

`GatewayView` collects the retained state that names things (offered QoS
levels, stage status, the gases each sensor averages, incident places);
`discovery_payloads` turns it into one device discovery payload per device:
the gateway (uplink, budget, incidents) and one device per camera, microphone
and gas sensor. Every topic comes from the registry; every key is one of Home
Assistant's documented discovery keys, abbreviated as its docs list them.
No I/O: the stage publishes what this returns.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from schemas.analytics import UPLINK_ANALYTIC, parse_analytic
from schemas.topics import (
    ALERT,
    ALERT_FORWARDER,
    AUDIO_CLASSIFIER,
    BANDWIDTH_ALLOCATOR,
    BUDGET_SET,
    CAMERA_CAPTURE,
    CAMERA_SWITCH_SET,
    CAMERA_SWITCH_STATE,
    CLOUD_BRIDGE,
    CONFIG_STATE,
    EVENT,
    GAS_AVERAGE,
    GAS_AVERAGE_RESULT,
    GAS_REPLAY,
    HA_DISCOVERY,
    LEVEL_SET,
    OBJECT_DETECTOR,
    QOS_KNOB,
    STATUS,
    UPLINK_USAGE,
)

Payload = dict[str, Any]
SourceKind = Literal["camera", "mic", "gas"]
AUTO_LEVEL: Final = "auto"  # the select's option for "the allocator chooses"
ORIGIN_URL: Final = "https://github.com/edgegw/edgegw"

# The stage that runs each analytic kind: its status is the entity's availability.
STAGE_OF_KIND: Final[dict[str, str]] = {
    "camera": CAMERA_CAPTURE,
    "detector": OBJECT_DETECTOR,
    "audio": AUDIO_CLASSIFIER,
    "gas": GAS_REPLAY,
}
SOURCE_OF_KIND: Final[dict[str, SourceKind]] = {
    "camera": "camera",
    "detector": "camera",
    "audio": "mic",
    "gas": "gas",
}
MODEL_OF_SOURCE: Final[dict[SourceKind, str]] = {
    "camera": "camera",
    "mic": "microphone",
    "gas": "gas sensor",
}
# Home Assistant sensor device classes whose documented units include ppm.
GAS_DEVICE_CLASS: Final[dict[str, str]] = {"co": "carbon_monoxide", "co2": "carbon_dioxide"}

# Per-camera switches: feature -> (stage, its config field: camera -> bool).
SWITCHES: Final[dict[str, tuple[str, str]]] = {
    "detect": (OBJECT_DETECTOR, "detect_by_camera"),
    "snapshots": (OBJECT_DETECTOR, "snapshots_by_camera"),
    "motion": (CAMERA_CAPTURE, "motion_by_camera"),
}
SWITCHES_OF_KIND: Final[dict[str, tuple[str, ...]]] = {
    "camera": ("motion",),
    "detector": ("detect", "snapshots"),
}
MAX_DEVICE_ID: Final = 64
_NOT_AN_ID = re.compile(r"[^A-Za-z0-9_-]")
# A lifecycle message (event or alert) is ON until its `end`.
_ON_UNTIL_END: Final = "{{ 'OFF' if value_json.type == 'end' else 'ON' }}"


def object_id(*parts: str) -> str:
    """An id Home Assistant accepts in a discovery topic: [A-Za-z0-9_-]."""
    return _NOT_AN_ID.sub("_", "_".join(parts))


@dataclass
class GatewayView:
    """What ha-discovery knows about one gateway."""

    root: str
    gateway_id: str
    version: str = "0"
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # analytic -> level names
    gases: dict[str, set[str]] = field(default_factory=dict)  # sensor -> gases averaged
    places: set[str] = field(default_factory=set)  # incident places seen on alert/<place>

    def sources(self) -> dict[tuple[SourceKind, str], list[str]]:
        """(source kind, source) -> its analytics, for every known source."""
        found: dict[tuple[SourceKind, str], list[str]] = {}
        for analytic in sorted(self.levels):
            parsed = parse_analytic(analytic)
            if parsed is None or analytic == UPLINK_ANALYTIC:
                continue
            kind, source = parsed
            found.setdefault((SOURCE_OF_KIND[kind], source), []).append(analytic)
        for sensor in self.gases:
            found.setdefault(("gas", sensor), [])
        return found

    def source_names(self) -> set[str]:
        return {source for _, source in self.sources()}

    def forget_stage(self, stage: str) -> bool:
        """A stage is gone (its retained status cleared): forget what it ran."""
        changed = False
        for analytic in list(self.levels):
            parsed = parse_analytic(analytic)
            if parsed is not None and STAGE_OF_KIND.get(parsed[0]) == stage:
                del self.levels[analytic]
                changed = True
        if stage == GAS_AVERAGE and self.gases:
            self.gases.clear()
            changed = True
        if stage == ALERT_FORWARDER and self.places:
            self.places.clear()
            changed = True
        return changed

    # -- topics -----------------------------------------------------------------

    def status_topic(self, stage: str) -> str:
        return STATUS.topic(self.root, stage=stage)

    def gateway_device_id(self) -> str:
        return object_id("edgegw", self.gateway_id)

    def source_device_id(self, kind: SourceKind, source: str) -> str:
        device_id = object_id("edgegw", self.gateway_id, kind, source)
        if len(device_id) <= MAX_DEVICE_ID:  # one topic level of the registry
            return device_id
        digest = hashlib.sha256(device_id.encode()).hexdigest()[:12]
        return f"{device_id[: MAX_DEVICE_ID - 13]}_{digest}"


def _availability(view: GatewayView, *stages: str) -> Payload:
    """Available while every one of `stages` says `online` (the defaults of
    `payload_available` / `payload_not_available` are our words)."""
    entries = [{"t": view.status_topic(stage)} for stage in stages]
    return {"avty": entries, "avty_mode": "all"} if len(entries) > 1 else {"avty": entries}


def _device(view: GatewayView, device_id: str, name: str, model: str) -> Payload:
    device: Payload = {"ids": [device_id], "name": name, "mf": "edgegw", "mdl": model}
    device["sw"] = view.version
    if device_id != view.gateway_device_id():
        device["via_device"] = view.gateway_device_id()
    return device


def _origin(view: GatewayView) -> Payload:
    return {"name": "edgegw ha-discovery", "sw": view.version, "url": ORIGIN_URL}


def _alert_components(view: GatewayView, device_id: str, source: str, what: str) -> Payload:
    """A binary_sensor (an alert is open) and an event entity (each alert
    message) for `alert/<source>`."""
    topic = ALERT.topic(view.root, source=source)
    availability = _availability(view, ALERT_FORWARDER)
    attributes = (
        "{{ {'label': value_json.label, 'severity': value_json.severity, "
        "'alert_id': value_json.alert_id, 'summary': value_json.summary} | tojson }}"
    )
    return {
        f"{what}": {
            "p": "binary_sensor",
            "name": what.replace("_", " ").capitalize(),
            "uniq_id": object_id(device_id, what),
            "stat_t": topic,
            "val_tpl": _ON_UNTIL_END,
            "dev_cla": "problem",
            "json_attr_t": topic,
            "json_attr_tpl": attributes,
            **availability,
        },
        f"{what}_event": {
            "p": "event",
            "name": what.replace("_", " ").capitalize() + " event",
            "uniq_id": object_id(device_id, what, "event"),
            "stat_t": topic,
            "evt_typ": ["new", "update", "end"],
            "val_tpl": (
                "{{ {'event_type': value_json.type, 'label': value_json.label, "
                "'severity': value_json.severity, 'alert_id': value_json.alert_id} | tojson }}"
            ),
            **availability,
        },
    }


def _level_components(view: GatewayView, device_id: str, analytic: str) -> Payload:
    """A select for the level the analytic is pinned to (`auto`: the allocator
    chooses), answered by the allocator's config state; a sensor for the level
    in force."""
    kind = analytic.partition(".")[0]
    key = object_id("level", kind)
    pinned = "{{ value_json.applied.pinned_levels.get('" + analytic + "', '" + AUTO_LEVEL + "') }}"
    return {
        key: {
            "p": "select",
            "name": f"{kind.capitalize()} level",
            "uniq_id": object_id(device_id, key),
            "cmd_t": LEVEL_SET.topic(view.root, analytic=analytic),
            "stat_t": CONFIG_STATE.topic(view.root, stage=BANDWIDTH_ALLOCATOR),
            "val_tpl": pinned,
            "ops": [AUTO_LEVEL, *view.levels[analytic]],
            "ent_cat": "config",
            **_availability(view, BANDWIDTH_ALLOCATOR, HA_DISCOVERY),
        },
        f"{key}_in_force": {
            "p": "sensor",
            "name": f"{kind.capitalize()} level in force",
            "uniq_id": object_id(device_id, key, "in_force"),
            "stat_t": QOS_KNOB.topic(view.root, analytic=analytic),
            "val_tpl": "{{ value_json.level.name }}",
            "ent_cat": "diagnostic",
            **_availability(view, STAGE_OF_KIND[kind]),
        },
    }


def _switch_components(view: GatewayView, device_id: str, camera: str, kind: str) -> Payload:
    components: Payload = {}
    for feature in SWITCHES_OF_KIND.get(kind, ()):
        stage = SWITCHES[feature][0]
        components[feature] = {
            "p": "switch",
            "name": feature.capitalize(),
            "uniq_id": object_id(device_id, feature),
            "cmd_t": CAMERA_SWITCH_SET.topic(view.root, camera=camera, feature=feature),
            "stat_t": CAMERA_SWITCH_STATE.topic(view.root, camera=camera, feature=feature),
            "ent_cat": "config",
            **_availability(view, stage, HA_DISCOVERY),
        }
    return components


def _gas_components(view: GatewayView, device_id: str, sensor: str) -> Payload:
    topic = GAS_AVERAGE_RESULT.topic(view.root, sensor=sensor)
    availability = _availability(view, GAS_AVERAGE)
    components: Payload = {}
    for gas in sorted(view.gases.get(sensor, ())):
        # One topic carries every gas of the sensor: keep the state for the others.
        template = (
            "{% if value_json.gas == '" + gas + "' %}{{ value_json.time_average }}"
            "{% else %}{{ this.state }}{% endif %}"
        )
        component: Payload = {
            "p": "sensor",
            "name": f"{gas.upper()} average",
            "uniq_id": object_id(device_id, "average", gas),
            "stat_t": topic,
            "val_tpl": template,
            "unit_of_meas": "ppm",
            "stat_cla": "measurement",
            **availability,
        }
        if gas in GAS_DEVICE_CLASS:
            component["dev_cla"] = GAS_DEVICE_CLASS[gas]
        components[object_id("average", gas)] = component
    components["gas_alarm"] = {
        "p": "binary_sensor",
        "name": "Gas alarm",
        "uniq_id": object_id(device_id, "gas_alarm"),
        "stat_t": EVENT.topic(view.root, source=sensor),
        "val_tpl": _ON_UNTIL_END,
        "dev_cla": "gas",
        **availability,
    }
    return components


def _gateway_payload(view: GatewayView) -> Payload:
    device_id = view.gateway_device_id()
    usage = UPLINK_USAGE.topic(view.root)
    bridge = _availability(view, CLOUD_BRIDGE)

    def uplink_sensor(key: str, name: str, template: str, **extra: object) -> Payload:
        return {
            key: {
                "p": "sensor",
                "name": name,
                "uniq_id": object_id(device_id, key),
                "stat_t": usage,
                "val_tpl": template,
                **extra,
                **bridge,
            }
        }

    rate: dict[str, object] = {
        "unit_of_meas": "kbit/s",
        "dev_cla": "data_rate",
        "stat_cla": "measurement",
    }
    components: Payload = {
        **uplink_sensor("uplink_used", "Uplink used", "{{ value_json.used_kbps }}", **rate),
        **uplink_sensor("uplink_budget", "Uplink budget", "{{ value_json.budget_kbps }}", **rate),
        **uplink_sensor(
            "uplink_budget_used",
            "Uplink budget used",
            "{{ (value_json.budget_used * 100) | round(1) "
            "if value_json.budget_used is not none else None }}",
            unit_of_meas="%",
            stat_cla="measurement",
        ),
        **uplink_sensor(
            "spool",
            "Spool",
            "{{ value_json.spool_bytes }}",
            unit_of_meas="B",
            dev_cla="data_size",
            ent_cat="diagnostic",
        ),
        "cloud_connected": {
            "p": "binary_sensor",
            "name": "Cloud connected",
            "uniq_id": object_id(device_id, "cloud_connected"),
            "stat_t": usage,
            "val_tpl": "{{ 'ON' if value_json.cloud_connected else 'OFF' }}",
            "dev_cla": "connectivity",
            **bridge,
        },
        "budget": {
            "p": "number",
            "name": "Uplink budget setting",
            "uniq_id": object_id(device_id, "budget"),
            "cmd_t": BUDGET_SET.topic(view.root),
            "stat_t": CONFIG_STATE.topic(view.root, stage=BANDWIDTH_ALLOCATOR),
            "val_tpl": "{{ value_json.applied.budget_kbps }}",
            "min": 0,
            "max": 1_000_000,
            "step": 1,
            "mode": "box",
            "unit_of_meas": "kbit/s",
            "dev_cla": "data_rate",
            "ent_cat": "config",
            **_availability(view, BANDWIDTH_ALLOCATOR, HA_DISCOVERY),
        },
    }
    for place in sorted(view.places):
        components.update(_alert_components(view, device_id, place, object_id("incident", place)))
    return {
        "dev": _device(view, device_id, f"edgegw {view.gateway_id}", "gateway"),
        "o": _origin(view),
        "cmps": components,
    }


def _source_payload(
    view: GatewayView, kind: SourceKind, source: str, analytics: list[str]
) -> Payload:
    device_id = view.source_device_id(kind, source)
    components: Payload = {}
    for analytic in analytics:
        components.update(_level_components(view, device_id, analytic))
        if kind == "camera":
            analytic_kind = analytic.partition(".")[0]
            components.update(_switch_components(view, device_id, source, analytic_kind))
    if kind == "gas":
        components.update(_gas_components(view, device_id, source))
    components.update(_alert_components(view, device_id, source, "alert"))
    return {
        "dev": _device(
            view, device_id, f"{source} ({MODEL_OF_SOURCE[kind]})", MODEL_OF_SOURCE[kind]
        ),
        "o": _origin(view),
        "cmps": components,
    }


def discovery_payloads(view: GatewayView, max_devices: int) -> dict[str, Payload]:
    """device id -> its discovery payload, for every device of `view`."""
    payloads = {view.gateway_device_id(): _gateway_payload(view)}
    for (kind, source), analytics in sorted(view.sources().items()):
        if len(payloads) >= max_devices:
            break
        payloads[view.source_device_id(kind, source)] = _source_payload(
            view, kind, source, [a for a in analytics if a != UPLINK_ANALYTIC]
        )
    return payloads
