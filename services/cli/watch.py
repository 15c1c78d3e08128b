"""`edgegw alerts` and `edgegw status`: what is happening, readably."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from typing import Any

import orjson

from schemas.alerts import UplinkUsage
from schemas.service import ConfigState, Health
from schemas.topics import CONFIG_STATE, EVENT, HEALTH, STATUS, UPLINK_USAGE
from services.cli.session import with_door
from services.cli.tables import format_table
from services.common.door import MqttDoor, Received
from services.common.settings import StageSettings

SETTLE_S = 1.0  # retained messages arrive right after SUBACK


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def describe_event(topic: str, body: dict[str, Any]) -> str:
    kind = str(body.get("type", "?")).upper()
    parts = [_clock(float(body.get("ts", time.time()))), f"{kind:6}", str(body.get("label", ""))]
    if body.get("kind") == "object":
        parts.append(f"{body.get('camera')} score {float(body.get('top_score', 0)):.2f}")
        zones = body.get("entered_zones") or []
        if zones:
            parts.append("zones " + ",".join(zones))
    if body.get("kind") == "sound":
        parts.append(f"{body.get('mic')} {body.get('top_class')} {float(body.get('score', 0)):.2f}")
    if "sensor" in body:
        parts.append(f"{body['sensor']} {body.get('gas', '')}={float(body['value']):.1f}")
        parts.append(f"(peak {float(body['peak']):.1f}, threshold {body['threshold']})")
    if "severity" in body:
        parts.append(str(body["severity"]))
    parts.append(f"id={body.get('event_id', body.get('id'))}")
    parts.append(f"[{topic}]")
    return "  ".join(parts)


async def tail_alerts(settings: StageSettings, root: str, limit: int | None) -> None:
    shown = 0
    done = asyncio.Event()

    async def show(message: Received[object]) -> None:
        nonlocal shown
        print(describe_event(message.topic, orjson.loads(message.raw)), flush=True)
        shown += 1
        if limit is not None and shown >= limit:
            done.set()

    def prepare(door: MqttDoor) -> None:
        door.subscribe(EVENT, show)

    async def body(door: MqttDoor) -> None:
        # Subscribed by now: say so on stderr, so a user (or a script) knows
        # from when on events are shown.
        print(f"following {root}/event/+ (Ctrl-C stops)", file=sys.stderr, flush=True)
        await done.wait()

    await with_door(settings, root, prepare, body)


async def show_status(settings: StageSettings, root: str) -> int:
    availability: dict[tuple[str, str], str] = {}
    health: dict[tuple[str, str], Health] = {}
    config: dict[tuple[str, str], ConfigState] = {}
    uplink: dict[str, UplinkUsage] = {}

    def gateway(topic: str) -> str:
        return topic.split("/")[1]

    async def on_status(message: Received[bytes]) -> None:
        availability[(gateway(message.topic), message.params["stage"])] = message.raw.decode()

    async def on_health(message: Received[Health | None]) -> None:
        if message.payload is not None:
            health[(gateway(message.topic), message.params["stage"])] = message.payload

    async def on_config(message: Received[ConfigState | None]) -> None:
        if message.payload is not None:
            config[(gateway(message.topic), message.params["stage"])] = message.payload

    async def on_usage(message: Received[UplinkUsage | None]) -> None:
        if message.payload is not None:
            uplink[gateway(message.topic)] = message.payload

    def prepare(door: MqttDoor) -> None:
        door.subscribe(STATUS, on_status)
        door.subscribe(HEALTH, on_health)
        door.subscribe(CONFIG_STATE, on_config)
        door.subscribe(UPLINK_USAGE, on_usage)

    async def body(door: MqttDoor) -> None:
        await asyncio.sleep(SETTLE_S)

    await with_door(settings, root, prepare, body)
    keys = sorted(set(availability) | set(health))
    if not keys:
        print(f"no stage has reported under {root}")
        return 1
    rows = []
    for key in keys:
        h = health.get(key)
        c = config.get(key)
        rows.append(
            [
                key[0],
                key[1],
                availability.get(key, "?"),
                h.state if h else "-",
                f"{h.uptime_s:.0f}s" if h else "-",
                h.reconnects if h else "-",
                c.generation if c else "-",
                f"{time.time() - h.ts:.0f}s" if h else "-",
            ]
        )
    headers = ("gateway", "stage", "status", "health", "uptime", "reconn", "config", "age")
    for line in format_table(headers, rows, right={4, 5, 6, 7}):
        print(line)
    for name, usage in sorted(uplink.items()):
        print(describe_uplink(name, usage))
    return 0


def describe_uplink(gateway: str, usage: UplinkUsage) -> str:
    """One line per gateway: what its uplink carries against the budget, and
    the rate each analytic was given."""
    budget = f"{usage.budget_kbps:g}" if usage.budget_kbps is not None else "?"
    link = "up" if usage.cloud_connected else "DOWN"
    line = (
        f"uplink {gateway}: {usage.used_kbps:.1f} of {budget} kbit/s ({usage.budget_source}), "
        f"cloud {link}, spool {usage.spool_entries} msgs"
    )
    if usage.analytic_rates_kbps:
        rates = ", ".join(
            f"{name} {kbps:g}" for name, kbps in sorted(usage.analytic_rates_kbps.items())
        )
        line += f"; per analytic kbit/s: {rates}"
    return line
