"""Events a producer computed but the broker has not yet confirmed.

A producer advances its state (an episode, a track, a sound) when it computes
an event; if the publish then fails (the broker crashed, the connection is
gone), dropping the event would lose a `new` or an `end` for good. So events
go into this bounded queue first and leave it only once the broker acknowledged
them (QoS 1), oldest first, with their ids unchanged: after a reconnect the
queue is flushed in order, and consumers deduplicate a re-send on its id.

An event that can never be published (refused before it reaches the broker,
e.g. over the topic's size) is dropped with an ERROR log, so it does not hold
back every later one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from schemas.audio import SoundEvent
from schemas.gas import GasEvent
from schemas.topics import EVENT
from schemas.video import ObjectEvent
from services.common.door import MqttDoor, PublishFailed, TooLarge

log = logging.getLogger(__name__)

EventT = TypeVar("EventT", bound=GasEvent | ObjectEvent | SoundEvent)


class UnsentEvents(Generic[EventT]):
    """A bounded, ordered queue of events for `event/<source>`."""

    def __init__(
        self,
        door: MqttDoor,
        source_of: Callable[[EventT], str],
        limit: int,
        on_sent: Callable[[EventT], None] = lambda _: None,  # after the count and log
    ) -> None:
        self._door = door
        self._source_of = source_of
        self._limit = limit
        self._on_sent = on_sent
        self._events: deque[EventT] = deque()
        self._sending = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._events)

    @property
    def full(self) -> bool:
        return len(self._events) >= self._limit

    def extend(self, events: list[EventT]) -> None:
        """Queue `events`; past the limit the oldest go, counted as lost
        (callers that can hold their input check `full` first instead)."""
        self._events.extend(events)
        while len(self._events) > self._limit:
            lost = self._events.popleft()
            self._door.metrics.count("events_lost")
            log.error("unsent events over the limit: oldest dropped", extra={"id": lost.id})

    async def send(self) -> bool:
        """Publish the queued events oldest first; False if one is still unsent."""
        async with self._sending:
            while self._events:
                event = self._events[0]
                try:
                    await self._door.publish(EVENT, event, source=self._source_of(event))
                except TooLarge:
                    log.exception("event dropped: over what the broker takes")
                    self._door.metrics.count("events_dropped")
                except PublishFailed as error:
                    self._door.metrics.count("event_publish_failed")
                    self._door.metrics.gauge("events_unsent", len(self._events))
                    log.warning("event not published yet: kept", extra={"error": str(error)})
                    return False
                except Exception:
                    log.exception("event dropped: it can never be published")
                    self._door.metrics.count("events_dropped")
                else:
                    self._door.metrics.count(f"events_{event.type}")
                    log.info(
                        "event published",
                        extra={"event_id": event.event_id, "type": event.type, "kind": event.kind},
                    )
                    self._on_sent(event)
                self._events.popleft()
            self._door.metrics.gauge("events_unsent", 0)
            return True
