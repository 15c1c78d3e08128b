"""What handlers receive from the door, and the exceptions they speak with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from pydantic import ValidationError

# Covariant: a message is read-only, so a handler written for a wider payload
# (`Received[Envelope | None]`) takes any narrower one (`Received[GasReading]`).
PayloadT_co = TypeVar("PayloadT_co", covariant=True)
P = TypeVar("P")


class InvalidMessage(Exception):
    """A handler cannot use this message: it goes to the dead-letter topic."""


class LeaveUnacknowledged(Exception):
    """A handler cannot take this QoS 1 message now (its store is full, the
    stage is stopping): it is neither acknowledged nor dead-lettered, so the
    broker keeps it and delivers it again after the next connect."""


class PublishFailed(Exception):
    """The broker could not be reached, or did not confirm in time."""


@dataclass(frozen=True)
class Received(Generic[PayloadT_co]):
    """A validated message of a `TopicSpec[P]`, as `Received[P]`. On a
    retained JSON topic `P` is `Model | None`: `payload` is None when the
    retained message was cleared (an empty payload)."""

    topic: str
    params: dict[str, str]
    payload: PayloadT_co
    raw: bytes
    retained: bool
    properties: dict[str, str]


# What handles the messages of a `TopicSpec[P]`: `MqttDoor.subscribe` checks
# that the handler takes what the topic carries.
Handler: TypeAlias = Callable[[Received[P]], Awaitable[None]]


def describe_validation_error(error: ValidationError) -> str:
    """'field: reason; field: reason' — what a dead letter or a rejection says."""
    parts = []
    for issue in error.errors():
        field = ".".join(str(part) for part in issue["loc"]) or "payload"
        parts.append(f"{field}: {issue['msg']}")
    return "; ".join(parts)
