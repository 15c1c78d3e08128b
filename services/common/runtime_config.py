"""Retained `config/<stage>` applied at run time, answered on the retained
`status/<stage>/config` topic.

The retained payload is the operator's whole override: a JSON object of the
stage's runtime-config fields, merged deeply over the start-up config (from the
environment), so `{"thresholds": {"co": {"enter": 40}}}` changes one number
and keeps every other. A valid payload replaces the config in force and the
listeners are told; an invalid one is rejected with every bad field named, and
the config in force stays. An empty retained payload (the retained message
deleted) goes back to the start-up config.

Every change is answered, whatever happens: a payload over the topic's size
limit (the door hands it over rather than dead-lettering it unanswered), a
`generation` outside 0..2^63-1 or not an integer, a listener that fails (the
previous config is put back and the answer says why: a refused config is
never left installed), an answer that cannot be built or sent (logged).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, JsonValue, ValidationError

from schemas.envelope import MAX_INT
from schemas.service import ConfigState, FieldError
from schemas.topics import CONFIG, CONFIG_STATE
from services.common.door import MqttDoor, PublishFailed, Received
from services.common.messages import validation_issues

log = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound=BaseModel)
GENERATION_KEY = "generation"
# An answer stays far below its topic's size limit: the first errors, cut short.
MAX_ANSWER_ERRORS = 20
MAX_REASON_CHARS = 500


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
        door.subscribe_any_size(CONFIG, self._on_config, stage=door.user)

    def on_change(self, listener: Callable[[ConfigT], None]) -> None:
        self._listeners.append(listener)

    def evaluate(self, payload: bytes) -> tuple[ConfigT | None, int | None, list[FieldError]]:
        """The config `payload` asks for, its generation, or why it is refused."""
        if len(payload) > CONFIG.max_bytes:
            reason = f"{len(payload)} bytes is over the {CONFIG.max_bytes}-byte limit"
            return None, None, [FieldError(field="payload", reason=reason)]
        values: object = {}
        if payload.strip():
            try:
                values = orjson.loads(payload)
            except orjson.JSONDecodeError as error:
                return None, None, [FieldError(field="payload", reason=f"invalid JSON: {error}")]
        if not isinstance(values, dict):
            return None, None, [FieldError(field="payload", reason="must be a JSON object")]
        generation = values.pop(GENERATION_KEY, None)
        # `type(...) is int`: JSON true is no generation, nor is 3.0.
        if generation is not None and not (type(generation) is int and 0 <= generation <= MAX_INT):
            reason = f"must be an integer from 0 to {MAX_INT}"
            return None, None, [FieldError(field=GENERATION_KEY, reason=reason)]
        try:
            config = self._model.model_validate(deep_merge(self._startup_values, values))
        except ValidationError as error:
            issues = validation_issues(error, self._model)
            return None, None, [FieldError(field=field, reason=why) for field, why in issues]
        return config, generation, []

    def install(self, config: ConfigT, generation: int | None) -> list[FieldError]:
        """Put `config` in force and tell the listeners, all or nothing: when a
        listener fails, the previous config is put back (and the listeners
        told again) and the reason is returned."""
        previous, previous_generation = self.current, self.generation
        self.current = config
        # After an operator's 2^63-1, a generation stays there: it must fit an answer.
        self.generation = (
            generation if generation is not None else min(self.generation + 1, MAX_INT)
        )
        told: list[Callable[[ConfigT], None]] = []
        try:
            for listener in self._listeners:
                told.append(listener)
                listener(config)
        except Exception as error:
            log.exception("config not applied: a listener failed, the previous one stays")
            self.current, self.generation = previous, previous_generation
            for listener in told:
                try:
                    listener(previous)
                except Exception:
                    log.exception("putting the previous config back failed")
            if isinstance(error, ValidationError):
                issues = validation_issues(error)
                return [FieldError(field=field, reason=why) for field, why in issues]
            return [FieldError(field="payload", reason=f"not applied: {error}")]
        return []

    async def _on_config(self, message: Received[bytes]) -> None:
        digest = config_digest(message.raw)
        if digest == self._last_digest:
            return  # the retained copy again after a reconnect
        self._last_digest = digest
        config, generation, errors = self.evaluate(message.raw)
        if config is not None:
            errors = self.install(config, generation)
        if errors:
            await self._answer(digest, "rejected", errors)
            reason = "config rejected: " + "; ".join(f"{e.field}: {e.reason}" for e in errors)
            await self._door.dead_letter(message.topic, message.raw, reason)
            return
        log.info("config applied", extra={"generation": self.generation})
        await self._answer(digest, "accepted", [])

    async def _answer(self, digest: str, status: str, errors: list[FieldError]) -> None:
        """Publish the answer; never raises (a config change must not end the stage)."""
        try:
            state = self._state(digest, status, errors)
            await self._door.publish(CONFIG_STATE, state, stage=self._door.user)
        except PublishFailed as error:
            log.error("could not publish the config state", extra={"error": str(error)})
        except Exception:
            log.exception("could not build or publish the config state")

    def _state(self, digest: str, status: str, errors: list[FieldError]) -> ConfigState:
        shown = [
            FieldError(field=e.field[:MAX_REASON_CHARS], reason=e.reason[:MAX_REASON_CHARS])
            for e in errors[:MAX_ANSWER_ERRORS]
        ]
        if len(errors) > MAX_ANSWER_ERRORS:
            more = f"and {len(errors) - MAX_ANSWER_ERRORS} more errors"
            shown.append(FieldError(field="payload", reason=more))
        applied: dict[str, JsonValue] = self.current.model_dump(mode="json")
        return ConfigState(
            source=self._door.user,
            stage=self._door.user,
            config_id=digest,
            generation=self.generation,
            status="accepted" if status == "accepted" else "rejected",
            errors=shown,
            applied=applied,
        )
