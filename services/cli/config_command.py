"""`edgegw config set <stage> key=value ...`: publish retained config, wait for
the stage's answer on `status/<stage>/config` and print it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from schemas.service import ConfigState
from schemas.topics import CONFIG, CONFIG_STATE
from services.cli.session import with_door
from services.common.door import MqttDoor, Received
from services.common.pacing import wait_set
from services.common.runtime_config import GENERATION_KEY, config_digest, deep_merge
from services.common.settings import StageSettings

SETTLE_S = 0.5


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """['a=1', 'b.c=x'] -> {'a': 1, 'b': {'c': 'x'}}; values are JSON when they parse."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{pair!r} is not key=value")
        try:
            value: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = text
        node = result
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return result


async def set_config(settings: StageSettings, stage: str, pairs: list[str], wait_s: float) -> int:
    changes = parse_assignments(pairs)
    current: dict[str, Any] = {}
    states: list[ConfigState] = []
    answered = asyncio.Event()
    wanted: dict[str, str] = {}

    async def on_config(message: Received[bytes]) -> None:
        if message.raw:
            current.update(orjson.loads(message.raw))

    async def on_state(message: Received[ConfigState | None]) -> None:
        if message.payload is None:
            return
        states.append(message.payload)
        if message.payload.config_id == wanted.get("id"):
            answered.set()

    def prepare(door: MqttDoor) -> None:
        door.subscribe(CONFIG, on_config, stage=stage)
        door.subscribe(CONFIG_STATE, on_state, stage=stage)

    async def body(door: MqttDoor) -> int:
        await asyncio.sleep(SETTLE_S)
        generation = max([s.generation for s in states] + [0]) + 1
        desired = deep_merge({k: v for k, v in current.items() if k != GENERATION_KEY}, changes)
        payload = orjson.dumps({**desired, GENERATION_KEY: generation})
        wanted["id"] = config_digest(payload)
        await door.publish(CONFIG, payload, stage=stage)
        if not await wait_set(answered, wait_s):
            print(f"published generation {generation}; {stage} did not answer in {wait_s} s")
            return 2
        answer = next(s for s in reversed(states) if s.config_id == wanted["id"])
        print(orjson.dumps(answer.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())
        return 0 if answer.status == "accepted" else 1

    return await with_door(settings, settings.root, prepare, body)
