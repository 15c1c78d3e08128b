"""Fields every JSON message carries, how messages become bytes and back, and
how a step in the life of an event or alert becomes its message.

A message that fails `decode` never reaches a handler: the MQTT door sends it
to the stage's dead-letter topic with the reason pydantic gives.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Self, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1

# One topic level (a `{param}` of the registry, a gateway id). A payload id
# that becomes a topic level (GasEvent.sensor, ObjectEvent.camera, ...) must
# match it too; topic_spec checks every level against the same pattern.
TOPIC_LEVEL_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"
TopicLevel = Annotated[str, Field(pattern=TOPIC_LEVEL_PATTERN)]

# orjson writes integers of 64 bits at most; a bigger one would make a
# message that validates but cannot be sent.
MAX_INT: Final = 2**63 - 1
MIN_INT: Final = -(2**63)
Int64 = Annotated[int, Field(ge=MIN_INT, le=MAX_INT)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]

# Wall-clock seconds since the epoch, up to the year 2286.
MAX_TIMESTAMP: Final = 1e10
Timestamp = Annotated[float, Field(ge=0, le=MAX_TIMESTAMP)]
# Durations, intervals and periods: at most a year.
MAX_SECONDS: Final = 366 * 86_400.0
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]
# Upload rates and budgets: at most 100 Gbit/s.
MAX_KBPS: Final = 1e8
Kbps = Annotated[float, Field(ge=0, le=MAX_KBPS)]
# Free-form ids and names.
Name = Annotated[str, Field(min_length=1, max_length=256)]
MAX_JSON_DEPTH: Final = 32


def _check_json(value: JsonValue, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise PydanticCustomError(
            "json_depth", "nested deeper than {limit} levels", {"limit": MAX_JSON_DEPTH}
        )
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise PydanticCustomError("int64", "integer outside 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise PydanticCustomError("finite_number", "Input should be a finite number")
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _check_json(item, depth + 1)


def _sendable_json(value: JsonValue) -> JsonValue:
    _check_json(value)
    return value


# Free JSON (summary values, a config's fields): pydantic's JsonValue lets
# NaN, Infinity and integers of any size through, which orjson then writes
# as null or refuses to write at all.
SafeJson = Annotated[JsonValue, AfterValidator(_sendable_json)]


def field_error(field: str, reason: str) -> PydanticCustomError:
    """What a model validator raises to name the field it refuses
    (`describe_validation_error` appends `field` to the error's location)."""
    return PydanticCustomError(
        "field_error", "{field}: {reason}", {"field": field, "reason": reason}
    )


def now() -> float:
    """Wall-clock seconds since the epoch: what `ts` fields hold."""
    return time.time()


def new_id() -> str:
    return uuid.uuid4().hex


class Model(BaseModel):
    """Base of every nested model: frozen, unknown fields are an error, and so
    are NaN and the infinities (as JSON tokens, as strings, or 1e999). Each
    model's validator is built when first used: a stage imports the whole
    topic registry but uses a few of its models (README, Memory)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, defer_build=True)


class Envelope(Model):
    """Base of every top-level JSON message.

    `id` identifies this message; a consumer that sees the same id twice
    (a QoS 1 redelivery) handles it once.
    """

    schema_version: Literal[1] = 1
    ts: Timestamp = Field(default_factory=now, description="seconds since the epoch")
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


# One lifecycle -> message builder: how a new/update/end step in the life of
# an event (a gas episode, a tracked object, a sound) or of an alert becomes
# its message. The stages keep the state (when a life starts, what counts as
# an update, when it ends) and say where a message stands in it as a
# `LifecycleStep`; `lifecycle_message` puts that step into the message model
# with the stage's payload, the same way for every model.

MessageT = TypeVar("MessageT", bound=Envelope)


@dataclass(frozen=True, slots=True)
class LifecycleStep:
    """Where one message stands in a life."""

    type: EventType
    event_id: str  # the same for new, every update and end of one life
    sequence: int  # n-th message of that life
    start_ts: float
    end_ts: float | None

    @property
    def message_id(self) -> str:
        return lifecycle_message_id(self.event_id, self.sequence)


def lifecycle_message(
    model: type[MessageT],
    source: str,
    step: LifecycleStep,
    *,
    life_id_field: Literal["event_id", "alert_id"] = "event_id",
    message_id: str | None = None,
    **payload: Any,
) -> MessageT:
    """`model`'s message for `step`, with `payload`'s fields.

    The life's id goes in `life_id_field`; the message id is
    `<event_id>.<sequence>` unless `message_id` is given (an alert's id names
    what triggered it, see alert_forwarder.alert_messages).
    """
    fields: dict[str, Any] = {
        "id": step.message_id if message_id is None else message_id,
        "source": source,
        "type": step.type,
        life_id_field: step.event_id,
        "start_ts": step.start_ts,
        "end_ts": step.end_ts,
    }
    return model(**fields, **payload)


def unit_score(score: float) -> float:
    """A model's score clamped to [0, 1], what every score field accepts."""
    return min(1.0, max(0.0, score))
