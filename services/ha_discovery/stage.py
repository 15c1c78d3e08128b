"""The async shell of ha-discovery: the gateway's retained state in, Home
Assistant's device discovery out, HA's commands turned into retained config.

Discovery is published retained, one payload per device, when it changes,
and all of it again whenever Home Assistant's birth message (`online` on
`homeassistant/status`) arrives, so entities never stay unavailable after a
Home Assistant restart. A device whose analytics are withdrawn or whose stage
is gone (its retained status cleared, as the deployer does on removal) gets
the empty payload, which removes it. Devices published by an earlier run are
read back from their retained topics; those the gateway no longer has are
removed once the retained state has had `settle_s` to arrive.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import time
from typing import Any

import orjson

from schemas.alerts import Alert
from schemas.gas import GasAverage
from schemas.qos import QosLevels
from schemas.service import ONLINE, ConfigState
from schemas.topics import (
    ALERT,
    BANDWIDTH_ALLOCATOR,
    BUDGET_SET,
    CAMERA_CAPTURE,
    CAMERA_SWITCH_SET,
    CAMERA_SWITCH_STATE,
    CONFIG,
    CONFIG_STATE,
    GAS_AVERAGE_RESULT,
    HA_DEVICE_CONFIG,
    HA_DISCOVERY,
    HA_STATUS,
    LEVEL_SET,
    OBJECT_DETECTOR,
    QOS_LEVELS,
    STATUS,
)
from services.common.door import InvalidMessage, MqttDoor, PublishFailed, Received
from services.common.pacing import wait_set
from services.common.stage_runner import serve
from services.ha_discovery.commands import (
    BadCommand,
    Override,
    budget_override,
    level_override,
    switch_override,
    switch_state,
)
from services.ha_discovery.devices import SWITCHES, GatewayView, discovery_payloads
from services.ha_discovery.settings import HaDiscoverySettings

log = logging.getLogger(__name__)
STOP_CHECK_S = 0.5
CONFIGURED_STAGES = (BANDWIDTH_ALLOCATOR, CAMERA_CAPTURE, OBJECT_DETECTOR)


def edgegw_version() -> str:
    try:
        return importlib.metadata.version("edgegw")
    except importlib.metadata.PackageNotFoundError:
        return "0"


class HaDiscoveryStage:
    def __init__(self, door: MqttDoor, settings: HaDiscoverySettings) -> None:
        self._door = door
        self._settings = settings
        self.view = GatewayView(door.root, settings.gateway_id, edgegw_version())
        self._published: dict[str, bytes] = {}  # device id -> payload the broker holds
        self._earlier: set[str] = set()  # published by an earlier run, seen retained
        self._overrides: dict[str, Override] = {}  # stage -> its retained config
        self._changed = asyncio.Event()
        self._republish_all = False
        self._connected_at: float | None = None
        door.subscribe(HA_DEVICE_CONFIG, self.on_device_config)
        door.subscribe(STATUS, self.on_status)
        door.subscribe(QOS_LEVELS, self.on_levels)
        door.subscribe(GAS_AVERAGE_RESULT, self.on_average)
        door.subscribe(ALERT, self.on_alert)
        for stage in CONFIGURED_STAGES:
            door.subscribe(CONFIG, self.on_config, stage=stage)
        for stage in (CAMERA_CAPTURE, OBJECT_DETECTOR):
            door.subscribe(CONFIG_STATE, self.on_config_state, stage=stage)
        door.subscribe(HA_STATUS, self.on_ha_status)
        door.subscribe(CAMERA_SWITCH_SET, self.on_switch_set)
        door.subscribe(BUDGET_SET, self.on_budget_set)
        door.subscribe(LEVEL_SET, self.on_level_set)

    # -- what the gateway has ----------------------------------------------------

    def _ours(self, device_id: str) -> bool:
        own = self.view.gateway_device_id()
        return device_id == own or device_id.startswith(own + "_")

    async def on_device_config(self, message: Received[bytes]) -> None:
        device_id = message.params["device"]
        earlier = message.retained and message.raw and self._ours(device_id)
        if earlier and device_id not in self._published:
            self._earlier.add(device_id)
            self._changed.set()

    async def on_status(self, message: Received[bytes]) -> None:
        if not message.raw.strip() and self.view.forget_stage(message.params["stage"]):
            log.info("stage gone: its devices go", extra={"stage": message.params["stage"]})
            self._changed.set()

    async def on_levels(self, message: Received[QosLevels | None]) -> None:
        analytic = message.params["analytic"]
        if message.payload is None:
            if self.view.levels.pop(analytic, None) is not None:
                self._changed.set()
            return
        if message.payload.analytic != analytic:
            raise InvalidMessage(
                f"levels of {message.payload.analytic!r} on the topic of {analytic}"
            )
        names = tuple(level.name for level in message.payload.levels)
        if self.view.levels.get(analytic) != names:
            self.view.levels[analytic] = names
            self._changed.set()

    async def on_average(self, message: Received[GasAverage]) -> None:
        gases = self.view.gases.setdefault(message.params["sensor"], set())
        if message.payload.gas not in gases:
            gases.add(message.payload.gas)
            self._changed.set()

    async def on_alert(self, message: Received[Alert]) -> None:
        source = message.params["source"]
        if source not in self.view.source_names() and source not in self.view.places:
            self.view.places.add(source)
            self._changed.set()

    async def on_config(self, message: Received[bytes]) -> None:
        stage = message.params["stage"]
        if not message.raw.strip():
            self._overrides.pop(stage, None)
            return
        try:
            values = orjson.loads(message.raw)
        except orjson.JSONDecodeError:
            return  # the stage dead-letters it; we keep the last good override
        if isinstance(values, dict):
            self._overrides[stage] = values

    async def on_ha_status(self, message: Received[bytes]) -> None:
        if message.raw.decode("utf-8", "replace").strip() == ONLINE:
            log.info("Home Assistant is online: discovery published again")
            self._door.metrics.count("ha_births")
            self._republish_all = True
            self._changed.set()

    # -- commands ------------------------------------------------------------------

    async def on_switch_set(self, message: Received[bytes]) -> None:
        camera, feature = message.params["camera"], message.params["feature"]
        word = message.raw.decode("utf-8", "replace").strip()
        stage = SWITCHES[feature][0] if feature in SWITCHES else ""
        await self._command(
            lambda: switch_override(self._overrides.get(stage, {}), camera, feature, word)
        )

    async def on_budget_set(self, message: Received[bytes]) -> None:
        word = message.raw.decode("utf-8", "replace").strip()
        await self._command(
            lambda: budget_override(self._overrides.get(BANDWIDTH_ALLOCATOR, {}), word)
        )

    async def on_level_set(self, message: Received[bytes]) -> None:
        analytic = message.params["analytic"]
        word = message.raw.decode("utf-8", "replace").strip()
        await self._command(
            lambda: level_override(self._overrides.get(BANDWIDTH_ALLOCATOR, {}), analytic, word)
        )

    async def _command(self, build: Any) -> None:
        try:
            stage, override = build()
        except BadCommand as error:
            raise InvalidMessage(str(error)) from None
        # Kept at once, so a second command before the echo builds on this one.
        self._overrides[stage] = override
        await self._door.publish(CONFIG, orjson.dumps(override), stage=stage)
        self._door.metrics.count("commands")
        log.info("command applied as config", extra={"stage": stage})

    async def on_config_state(self, message: Received[ConfigState | None]) -> None:
        state = message.payload
        if state is None:
            return
        stage = message.params["stage"]
        cameras = {source for (kind, source) in self.view.sources() if kind == "camera"}
        for feature, (owner, _) in SWITCHES.items():
            if owner != stage:
                continue
            for camera in sorted(cameras):
                word = switch_state(state.applied, camera, feature)
                if word is not None:
                    await self._door.publish(
                        CAMERA_SWITCH_STATE, word, camera=camera, feature=feature
                    )

    # -- publishing ----------------------------------------------------------------

    async def publish_discovery(self, stop: asyncio.Event) -> None:
        """Worker: publish what changed, `debounce_s` after the last change."""
        self._changed.set()
        while not stop.is_set():
            await wait_set(self._changed, STOP_CHECK_S)
            if not self._door.connected.is_set():
                self._connected_at = None
                continue
            if self._connected_at is None:
                self._connected_at = time.monotonic()
                self._changed.set()
            settled = time.monotonic() - self._connected_at >= self._settings.settle_s
            if not self._changed.is_set() and not (settled and self._earlier):
                continue
            await wait_set(stop, self._settings.debounce_s)
            if stop.is_set():
                return
            self._changed.clear()
            try:
                await self._publish_changes(settled)
            except PublishFailed as error:
                log.warning("discovery not published", extra={"error": str(error)})
                self._changed.set()

    async def _publish_changes(self, settled: bool) -> None:
        wanted = {
            device_id: orjson.dumps(payload)
            for device_id, payload in discovery_payloads(
                self.view, self._settings.max_devices
            ).items()
        }
        republish, self._republish_all = self._republish_all, False
        for device_id, data in wanted.items():
            if republish or self._published.get(device_id) != data:
                await self._door.publish(HA_DEVICE_CONFIG, data, device=device_id)
                self._published[device_id] = data
                self._earlier.discard(device_id)
                self._door.metrics.count("devices_published")
        gone = [device_id for device_id in self._published if device_id not in wanted]
        if settled:
            gone += [device_id for device_id in self._earlier if device_id not in wanted]
        for device_id in gone:
            await self._door.publish(HA_DEVICE_CONFIG, b"", device=device_id)
            self._published.pop(device_id, None)
            self._earlier.discard(device_id)
            self._door.metrics.count("devices_removed")
            log.info("device removed", extra={"device": device_id})
        self._door.metrics.gauge("devices", len(self._published))


async def run(settings: HaDiscoverySettings, stop: asyncio.Event | None = None) -> None:
    door = MqttDoor(settings, HA_DISCOVERY)
    stage = HaDiscoveryStage(door, settings)
    await serve(door, [stage.publish_discovery], stop=stop)
