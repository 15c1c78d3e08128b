"""Retained `config/<stage>` applied at run time, answered on the retained
`status/<stage>/config` topic.

The retained payload is the operator's whole override: a JSON object of the
stage's runtime-config fields, merged deeply over the start-up config (from the
environment), so `{"thresholds": {"co": {"enter": 40}}}` changes one number
and keeps every other. A valid payload replaces the config in force and the
listeners are told; an invalid one is rejected with every bad field named, and
the config in force stays. An empty retained payload (the retained message
deleted) goes back to the start-up config.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, JsonValue, ValidationError

from schemas.service import ConfigState, FieldError
from schemas.topics import CONFIG, CONFIG_STATE
from services.common.door import MqttDoor, PublishFailed, Received

log = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound=BaseModel)
GENERATION_KEY = "generation"


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:16]


class RuntimeConfig(Generic[ConfigT]):
    def __init__(self, door: MqttDoor, model: type[ConfigT], startup: ConfigT) -> None:
        self.current = startup
        self.generation = 0
        self._door = door
        self._model = model
        self._startup_values = startup.model_dump()
        self._last_digest: str | None = None
        self._listeners: list[Callable[[ConfigT], None]] = []
        door.subscribe(CONFIG, self._on_config, stage=door.user)

    def on_change(self, listener: Callable[[ConfigT], None]) -> None:
        self._listeners.append(listener)

    def evaluate(self, payload: bytes) -> tuple[ConfigT | None, int | None, list[FieldError]]:
        """The config `payload` asks for, its generation, or why it is refused."""
        values: object = {}
        if payload.strip():
            try:
                values = orjson.loads(payload)
            except orjson.JSONDecodeError as error:
                return None, None, [FieldError(field="payload", reason=f"invalid JSON: {error}")]
        if not isinstance(values, dict):
            return None, None, [FieldError(field="payload", reason="must be a JSON object")]
        generation = values.pop(GENERATION_KEY, None)
        if generation is not None and (not isinstance(generation, int) or generation < 0):
            reason = "must be a non-negative integer"
            return None, None, [FieldError(field=GENERATION_KEY, reason=reason)]
        try:
            config = self._model.model_validate(deep_merge(self._startup_values, values))
        except ValidationError as error:
            errors = [
                FieldError(
                    field=".".join(str(part) for part in issue["loc"]) or "payload",
                    reason=issue["msg"],
                )
                for issue in error.errors()
            ]
            return None, None, errors
        return config, generation, []

    async def _on_config(self, message: Received[bytes]) -> None:
        digest = config_digest(message.raw)
        if digest == self._last_digest:
            return  # the retained copy again after a reconnect
        self._last_digest = digest
        config, generation, errors = self.evaluate(message.raw)
        if config is None:
            await self._answer(digest, "rejected", errors)
            reason = "config rejected: " + "; ".join(f"{e.field}: {e.reason}" for e in errors)
            await self._door.dead_letter(message.topic, message.raw, reason)
            return
        self.current = config
        self.generation = generation if generation is not None else self.generation + 1
        for listener in self._listeners:
            listener(config)
        log.info("config applied", extra={"generation": self.generation})
        await self._answer(digest, "accepted", [])

    async def _answer(self, digest: str, status: str, errors: list[FieldError]) -> None:
        applied: dict[str, JsonValue] = self.current.model_dump(mode="json")
        state = ConfigState(
            source=self._door.user,
            stage=self._door.user,
            config_id=digest,
            generation=self.generation,
            status="accepted" if status == "accepted" else "rejected",
            errors=errors,
            applied=applied,
        )
        try:
            await self._door.publish(CONFIG_STATE, state, stage=self._door.user)
        except PublishFailed as error:
            log.error("could not publish the config state", extra={"error": str(error)})
