"""What handlers receive from the door, and the exceptions they speak with."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from pydantic import BaseModel, ValidationError

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


def validation_issues(
    error: ValidationError, model: type[BaseModel] | None = None
) -> list[tuple[str, str]]:
    """(field, reason) of every issue. A model validator names its field with
    `schemas.envelope.field_error`; one that raised a plain ValueError on
    `model` itself is mapped to the first of `model`'s fields its message
    names, so an answer never says `payload` where a field is at fault."""
    found = []
    for issue in error.errors():
        loc = [str(part) for part in issue["loc"]]
        reason = issue["msg"]
        context = issue.get("ctx") or {}
        if issue["type"] == "field_error" and "field" in context:
            loc.append(str(context["field"]))
            reason = str(context["reason"])
        elif not loc and model is not None:
            named = _first_field_named(reason, model)
            if named is not None:
                loc = [named]
        found.append((".".join(loc) or "payload", reason))
    return found


def _first_field_named(message: str, model: type[BaseModel]) -> str | None:
    places = {
        name: match.start()
        for name in model.model_fields
        if (match := re.search(rf"\b{re.escape(name)}\b", message)) is not None
    }
    return min(places, key=places.__getitem__) if places else None


def describe_validation_error(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """'field: reason; field: reason' — what a dead letter or a rejection says."""
    return "; ".join(f"{field}: {reason}" for field, reason in validation_issues(error, model))
