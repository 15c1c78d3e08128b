"""One lifecycle -> message builder: how a new/update/end step in the life of
an event (a gas episode, a tracked object, a sound) or of an alert becomes
its message.

The stages keep the state (when a life starts, what counts as an update,
when it ends) and say where a message stands in it as a `LifecycleStep`;
`lifecycle_message` puts that step into the message model with the stage's
payload, the same way for every model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from schemas.envelope import Envelope, EventType, lifecycle_message_id

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
