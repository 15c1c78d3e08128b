"""Fields every JSON message carries, and how messages become bytes and back.

A message that fails `decode` never reaches a handler: the MQTT door sends it
to the stage's dead-letter topic with the reason pydantic gives.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal, Self, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


def now() -> float:
    """Wall-clock seconds since the epoch: what `ts` fields hold."""
    return time.time()


def new_id() -> str:
    return uuid.uuid4().hex


class Model(BaseModel):
    """Base of every nested model: frozen, and unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Envelope(Model):
    """Base of every top-level JSON message.

    `id` identifies this message; a consumer that sees the same id twice
    (a QoS 1 redelivery) handles it once.
    """

    schema_version: Literal[1] = 1
    ts: float = Field(default_factory=now, description="seconds since the epoch")
    source: str = Field(min_length=1, max_length=128, description="stage that produced it")
    id: str = Field(default_factory=new_id, min_length=1, max_length=128)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        return cls.model_validate_json(payload)


EnvelopeT = TypeVar("EnvelopeT", bound=Envelope)


def decode(model: type[EnvelopeT], payload: bytes) -> EnvelopeT:
    """Validate `payload` as `model`; raises pydantic.ValidationError."""
    return model.model_validate_json(payload)


def lifecycle_message_id(event_id: str, sequence: int) -> str:
    """Stable id of the n-th message of one event: a re-send keeps its id."""
    return f"{event_id}.{sequence}"


EventType = Literal["new", "update", "end"]
