"""What one topic of the registry is (`TopicSpec`): its template and
parameters, payload model, QoS, retention, size cap, and who may publish and
subscribe; how concrete topics and subscription filters are built from it and
matched against it. The table of every topic is schemas/topics.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar, overload

from pydantic import TypeAdapter

from schemas.envelope import TOPIC_LEVEL_PATTERN, Envelope

# `SELF` in publishers/subscribers means "each stage, on its own instance of
# the topic" (the `{stage}` parameter is the stage's own name).
SELF: Final = "<self>"

RAW: Final = "raw"  # payload is opaque bytes (JPEG, PCM), not a JSON model
TEXT: Final = "text"  # payload is a short UTF-8 word (status online/offline)
Opaque: TypeAlias = Literal["raw", "text"]

# What a topic carries, as handlers receive it and `publish` takes it: the
# model for a JSON topic (`model | None` on a retained one: None is the
# cleared retained message), bytes for RAW and TEXT topics.
P = TypeVar("P")
M = TypeVar("M", bound=Envelope)
A = TypeVar("A", bound=Envelope)
B = TypeVar("B", bound=Envelope)
C = TypeVar("C", bound=Envelope)

_PARAM = re.compile(r"\{([a-z_]+)\}")
_PARAM_VALUE = re.compile(TOPIC_LEVEL_PATTERN)

# PUBLISH fixed header (<= 5 bytes), topic length (2), packet id (2) and
# property length (1): what MQTT 5 adds to a QoS 1 message's topic and payload.
PUBLISH_OVERHEAD_BYTES: Final = 10


def publish_bytes(topic: str, payload: bytes, properties: Mapping[str, str] | None = None) -> int:
    """Bytes one QoS 1 PUBLISH puts on the wire: what a level's upload cost
    is priced from and what the cloud bridge charges its budget. Each MQTT 5
    user property adds its identifier (1) and two length-prefixed strings."""
    user = sum(5 + len(k.encode()) + len(v.encode()) for k, v in (properties or {}).items())
    return len(payload) + len(topic.encode()) + user + PUBLISH_OVERHEAD_BYTES


KIB: Final = 1024
MIB: Final = 1024 * KIB


def is_valid_level(value: str) -> bool:
    """Whether `value` may stand as one topic level (a parameter, a gateway id)."""
    return _PARAM_VALUE.fullmatch(value) is not None


class TopicError(ValueError):
    """A topic does not fit its template, or a parameter is not a valid level."""


@dataclass(frozen=True)
class TopicSpec(Generic[P]):
    """One topic; `P` is its payload type (see `spec_of`, which infers it)."""

    name: str
    template: str
    payload: Any  # an Envelope model, a union of them (with `models`), RAW or TEXT
    qos: int
    retained: bool
    publishers: frozenset[str]
    subscribers: frozenset[str]
    max_bytes: int = 64 * KIB
    models: tuple[type[Envelope], ...] = ()
    params: tuple[str, ...] = field(init=False)
    _adapter: TypeAdapter[Any] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(_PARAM.findall(self.template)))
        json = not isinstance(self.payload, str)
        object.__setattr__(self, "_adapter", TypeAdapter(self.payload) if json else None)
        if json and not self.models:
            object.__setattr__(self, "models", (self.payload,))

    def decode(self, raw: bytes) -> P:
        """Validate a JSON payload; raises pydantic.ValidationError."""
        assert self._adapter is not None, f"{self.name} carries no JSON"
        decoded: P = self._adapter.validate_json(raw)
        return decoded

    def carries(self, message: object) -> bool:
        return isinstance(message, self.models)

    def topic(self, root: str, **params: str) -> str:
        """The concrete topic under `root` (e.g. ``edgegw/gw1``)."""
        missing = set(self.params) - params.keys()
        extra = params.keys() - set(self.params)
        if missing or extra:
            raise TopicError(f"{self.name}: needs {self.params}, got {sorted(params)}")
        for key, value in params.items():
            if not _PARAM_VALUE.fullmatch(value):
                raise TopicError(f"{self.name}: {key}={value!r} is not a valid topic level")
        return f"{root}/{self.template.format(**params)}"

    def filter(self, root: str, **params: str) -> str:
        """A subscription filter: parameters not given become `+`."""
        levels = {p: params.get(p, "+") for p in self.params}
        return f"{root}/{self.template.format(**levels)}"

    def match(self, root: str, topic: str) -> dict[str, str] | None:
        """The parameters of `topic` if it is an instance of this spec under
        `root` (whose levels may be `+`), else None."""
        patterns = root.split("/") + self.template.split("/")
        levels = topic.split("/")
        if len(levels) != len(patterns):
            return None
        found: dict[str, str] = {}
        for level, pattern in zip(levels, patterns, strict=True):
            param = _PARAM.fullmatch(pattern)
            if param:
                found[param.group(1)] = level
            elif pattern != "+" and level != pattern:
                return None
        return found

    def may_publish(self, user: str, params: dict[str, str]) -> bool:
        return user in self.publishers or (SELF in self.publishers and params.get("stage") == user)

    def may_subscribe(self, user: str, params: dict[str, str]) -> bool:
        return user in self.subscribers or (
            SELF in self.subscribers and params.get("stage") == user
        )

    @property
    def is_json(self) -> bool:
        return self._adapter is not None


# Any topic of the registry, whatever it carries (tables of specs, ACLs).
AnyTopicSpec: TypeAlias = TopicSpec[Any]


@overload
def spec_of(
    name: str,
    template: str,
    payload: object,
    *,
    qos: int,
    retained: Literal[False] = False,
    publishers: tuple[str, ...],
    subscribers: tuple[str, ...],
    max_bytes: int = 64 * KIB,
    models: tuple[type[A], type[B], type[C]],
) -> TopicSpec[A | B | C]: ...


@overload
def spec_of(
    name: str,
    template: str,
    payload: object,
    *,
    qos: int,
    retained: Literal[False] = False,
    publishers: tuple[str, ...],
    subscribers: tuple[str, ...],
    max_bytes: int = 64 * KIB,
    models: tuple[type[A], type[B]],
) -> TopicSpec[A | B]: ...


@overload
def spec_of(
    name: str,
    template: str,
    payload: type[M],
    *,
    qos: int,
    retained: Literal[False] = False,
    publishers: tuple[str, ...],
    subscribers: tuple[str, ...],
    max_bytes: int = 64 * KIB,
) -> TopicSpec[M]: ...


@overload
def spec_of(
    name: str,
    template: str,
    payload: type[M],
    *,
    qos: int,
    retained: Literal[True],
    publishers: tuple[str, ...],
    subscribers: tuple[str, ...],
    max_bytes: int = 64 * KIB,
) -> TopicSpec[M | None]: ...


@overload
def spec_of(
    name: str,
    template: str,
    payload: Opaque,
    *,
    qos: int,
    retained: bool = False,
    publishers: tuple[str, ...],
    subscribers: tuple[str, ...],
    max_bytes: int = 64 * KIB,
) -> TopicSpec[bytes]: ...


def spec_of(
    name: str,
    template: str,
    payload: object,
    *,
    qos: int,
    retained: bool = False,
    publishers: tuple[str, ...],
    subscribers: tuple[str, ...],
    max_bytes: int = 64 * KIB,
    models: tuple[type[Envelope], ...] = (),
) -> AnyTopicSpec:
    """A topic of the registry. Its payload type follows from `payload`: a
    model `M` gives `TopicSpec[M]` (`TopicSpec[M | None]` when retained, None
    being the cleared message), a discriminated union with its `models` gives
    `TopicSpec[A | B | C]`, RAW and TEXT give `TopicSpec[bytes]` (a TEXT
    handler gets the bytes; `publish` also takes a str and encodes it)."""
    return TopicSpec(
        name=name,
        template=template,
        payload=payload,
        qos=qos,
        retained=retained,
        publishers=frozenset(publishers),
        subscribers=frozenset(subscribers),
        max_bytes=max_bytes,
        models=models,
    )
