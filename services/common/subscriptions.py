"""The door's subscription table: which handler a received topic goes to, and
the checks its payload passes before that handler sees it.

No I/O, so routing and payload checks are testable without a broker: the door
subscribes to `filters()` on every connect, then asks `match()` and
`decode_payload()` for each message it receives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from pydantic import ValidationError

from schemas.topics import TopicSpec
from services.common.messages import Handler, InvalidMessage, describe_validation_error

P = TypeVar("P")


@dataclass(frozen=True)
class Route(Generic[P]):
    spec: TopicSpec[P]
    subscription: str
    handler: Handler[P]
    qos: int
    # The handler takes payloads over the topic's `max_bytes` too and answers
    # them itself (runtime config: every change gets an answer).
    take_oversize: bool = False


class Subscriptions:
    """One stage's routes, in registration order: the first match wins."""

    def __init__(self, user: str, root: str) -> None:
        self.user = user
        self.root = root
        self._routes: list[Route[Any]] = []

    def add(
        self,
        spec: TopicSpec[P],
        handler: Handler[P],
        *,
        share_group: str | None,
        params: dict[str, str],
        qos: int | None = None,
        take_oversize: bool = False,
    ) -> None:
        """Route messages of `spec` (parameters not given are wildcards), at
        the topic's QoS or a lower `qos`."""
        if not spec.may_subscribe(self.user, params):
            raise PermissionError(f"{self.user} may not subscribe to {spec.name}")
        if qos is not None and not 0 <= qos <= spec.qos:
            raise ValueError(f"qos {qos} for {spec.name}: 0..{spec.qos}")
        subscription = spec.filter(self.root, **params)
        if share_group:
            subscription = f"$share/{share_group}/{subscription}"
        route_qos = spec.qos if qos is None else qos
        self._routes.append(Route(spec, subscription, handler, route_qos, take_oversize))

    def filters(self) -> list[tuple[str, int]]:
        """(topic filter, QoS) of every route, for one SUBSCRIBE."""
        return [(route.subscription, route.qos) for route in self._routes]

    @property
    def any_qos1(self) -> bool:
        """Whether a route takes QoS 1, which needs a persistent session."""
        return any(route.qos > 0 for route in self._routes)

    def match(self, topic: str) -> tuple[Route[Any], dict[str, str]] | None:
        """The route for `topic` and its topic parameters; None if none takes it."""
        for route in self._routes:
            params = route.spec.match(self.root, topic)
            if params is not None:
                return route, params
        return None


def decode_payload(spec: TopicSpec[P], raw: bytes, *, take_oversize: bool = False) -> P:
    """What a handler of `spec` receives for `raw`; raises InvalidMessage.

    The casts are what `spec_of` types a spec by: RAW and TEXT specs are
    `TopicSpec[bytes]`, retained JSON specs `TopicSpec[Model | None]`."""
    if len(raw) > spec.max_bytes and not (take_oversize and not spec.is_json):
        raise InvalidMessage(
            f"payload of {len(raw)} bytes exceeds the {spec.max_bytes}-byte limit of {spec.name}"
        )
    if not spec.is_json:
        return cast(P, raw)
    if not raw and spec.retained:
        return cast(P, None)  # the retained message was cleared: handlers get None
    if not raw:
        raise InvalidMessage("empty payload")
    try:
        return spec.decode(raw)
    except ValidationError as error:
        raise InvalidMessage(describe_validation_error(error)) from None
