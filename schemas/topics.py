"""Every topic of edgegw: template, payload, QoS, retention, who may publish
and who may subscribe. Services build topics here, never by hand; the broker's
ACL file is generated from the same table (broker/generate.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from pydantic import Field, TypeAdapter

from schemas.alerts import Alert, Summary, TakenReceipt, UplinkUsage
from schemas.audio import AudioClasses, SoundEvent
from schemas.envelope import Envelope
from schemas.gas import GasAverage, GasEvent, GasReading
from schemas.qos import PlanRequest, QosKnob, QosLevels, QosPlan
from schemas.service import ConfigState, DeadLetter, Health, Metrics
from schemas.video import Detections, MotionScore, ObjectEvent

# Stage names: the MQTT username, the `edgegw run <stage>` name and the
# `services.<stage with underscores>` package.
GAS_REPLAY: Final = "gas-replay"
GAS_AVERAGE: Final = "gas-average"
CAMERA_CAPTURE: Final = "camera-capture"
OBJECT_DETECTOR: Final = "object-detector"
AUDIO_CAPTURE: Final = "audio-capture"
AUDIO_CLASSIFIER: Final = "audio-classifier"
ALERT_FORWARDER: Final = "alert-forwarder"
CLOUD_BRIDGE: Final = "cloud-bridge"
BANDWIDTH_ALLOCATOR: Final = "bandwidth-allocator"
TELEMETRY_RECORDER: Final = "telemetry-recorder"
DEPLOYER: Final = "deployer"
# The operator's CLI (`edgegw alerts|status|config`) and any dashboard.
OPERATOR: Final = "operator"

STAGES: Final = (
    GAS_REPLAY,
    GAS_AVERAGE,
    CAMERA_CAPTURE,
    OBJECT_DETECTOR,
    AUDIO_CAPTURE,
    AUDIO_CLASSIFIER,
    ALERT_FORWARDER,
    CLOUD_BRIDGE,
    BANDWIDTH_ALLOCATOR,
    TELEMETRY_RECORDER,
    DEPLOYER,
)
USERS: Final = (*STAGES, OPERATOR)

# `SELF` in publishers/subscribers means "each stage, on its own instance of
# the topic" (the `{stage}` parameter is the stage's own name).
SELF: Final = "<self>"

RAW: Final = "raw"  # payload is opaque bytes (JPEG, PCM), not a JSON model
TEXT: Final = "text"  # payload is a short UTF-8 word (status online/offline)

_PARAM = re.compile(r"\{([a-z_]+)\}")
_PARAM_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

KIB: Final = 1024
MIB: Final = 1024 * KIB


class TopicError(ValueError):
    """A topic does not fit its template, or a parameter is not a valid level."""


# Every lifecycle event on `event/<source>`, told apart by `kind`.
AnyEvent = Annotated[GasEvent | ObjectEvent | SoundEvent, Field(discriminator="kind")]
EVENT_MODELS: Final = (GasEvent, ObjectEvent, SoundEvent)


@dataclass(frozen=True)
class TopicSpec:
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

    def decode(self, raw: bytes) -> Envelope:
        """Validate a JSON payload; raises pydantic.ValidationError."""
        assert self._adapter is not None, f"{self.name} carries no JSON"
        decoded: Envelope = self._adapter.validate_json(raw)
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
            if not _PARAM_VALUE.match(value):
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


def _spec(
    name: str,
    template: str,
    payload: Any,
    *,
    qos: int,
    retained: bool = False,
    publishers: tuple[str, ...],
    subscribers: tuple[str, ...],
    max_bytes: int = 64 * KIB,
    models: tuple[type[Envelope], ...] = (),
) -> TopicSpec:
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


ANALYTIC_STAGES: Final = (
    CAMERA_CAPTURE,
    OBJECT_DETECTOR,
    AUDIO_CAPTURE,
    AUDIO_CLASSIFIER,
    GAS_REPLAY,
    GAS_AVERAGE,
)


FRAME = _spec(
    "frame",
    "camera/{camera}/frame",
    RAW,  # JPEG; seq, capture ts, width and height ride as MQTT 5 user properties
    qos=0,
    publishers=(CAMERA_CAPTURE,),
    subscribers=(OBJECT_DETECTOR,),
    max_bytes=4 * MIB,
)
GAS_READING = _spec(
    "gas_reading",
    "sensor/gas/{sensor}",
    GasReading,
    qos=1,
    publishers=(GAS_REPLAY,),
    subscribers=(GAS_AVERAGE, TELEMETRY_RECORDER, OPERATOR),
    max_bytes=4 * KIB,
)
GAS_AVERAGE_RESULT = _spec(
    "gas_average",
    "gas/{sensor}/average",
    GasAverage,
    qos=0,
    publishers=(GAS_AVERAGE,),
    subscribers=(TELEMETRY_RECORDER, OPERATOR),
    max_bytes=4 * KIB,
)
EVENT = _spec(
    "event",
    "event/{source}",
    AnyEvent,
    models=EVENT_MODELS,
    qos=1,
    publishers=(GAS_AVERAGE, OBJECT_DETECTOR, AUDIO_CLASSIFIER),
    subscribers=(ALERT_FORWARDER, TELEMETRY_RECORDER, OPERATOR),
    max_bytes=16 * KIB,
)
MOTION = _spec(
    "motion",
    "camera/{camera}/motion",
    MotionScore,
    qos=0,
    publishers=(CAMERA_CAPTURE,),
    subscribers=(TELEMETRY_RECORDER, OPERATOR),
    max_bytes=4 * KIB,
)
DETECTIONS = _spec(
    "detections",
    "detections/{camera}",
    Detections,
    qos=0,
    publishers=(OBJECT_DETECTOR,),
    subscribers=(TELEMETRY_RECORDER, OPERATOR),
    max_bytes=256 * KIB,
)
SNAPSHOT = _spec(
    "snapshot",
    "snapshot/{camera}/{label}",
    RAW,  # JPEG of the latest object of that label
    qos=1,
    retained=True,
    publishers=(OBJECT_DETECTOR,),
    subscribers=(OPERATOR, CLOUD_BRIDGE),
    max_bytes=4 * MIB,
)
AUDIO_CHUNK = _spec(
    "audio_chunk",
    "audio/{mic}/chunk",
    RAW,  # PCM16 mono; seq, capture ts, sample rate, channels as user properties
    qos=0,
    publishers=(AUDIO_CAPTURE,),
    subscribers=(AUDIO_CLASSIFIER,),
    max_bytes=1 * MIB,
)
AUDIO_CLASSES = _spec(
    "audio_classes",
    "audio/{mic}/classes",
    AudioClasses,
    qos=0,
    publishers=(AUDIO_CLASSIFIER,),
    subscribers=(TELEMETRY_RECORDER, OPERATOR),
    max_bytes=16 * KIB,
)
ALERT = _spec(
    "alert",
    "alert/{source}",
    Alert,
    qos=1,
    publishers=(ALERT_FORWARDER,),
    subscribers=(CLOUD_BRIDGE, TELEMETRY_RECORDER, OPERATOR),
    max_bytes=32 * KIB,
)
SUMMARY = _spec(
    "summary",
    "summary/{analytic}",
    Summary,
    qos=1,
    publishers=ANALYTIC_STAGES,
    subscribers=(CLOUD_BRIDGE, TELEMETRY_RECORDER, OPERATOR),
)
QOS_LEVELS = _spec(
    "qos_levels",
    "qos/{analytic}/levels",
    QosLevels,
    qos=1,
    retained=True,
    publishers=(*ANALYTIC_STAGES, CLOUD_BRIDGE),
    subscribers=(BANDWIDTH_ALLOCATOR, OPERATOR),
)
QOS_KNOB = _spec(
    "qos_knob",
    "qos/{analytic}",
    QosKnob,
    qos=1,
    retained=True,
    publishers=(BANDWIDTH_ALLOCATOR,),
    subscribers=(*ANALYTIC_STAGES, CLOUD_BRIDGE, OPERATOR),
    max_bytes=8 * KIB,
)
TAKEN = _spec(
    "taken",
    "uplink/taken",
    TakenReceipt,
    qos=1,
    publishers=(CLOUD_BRIDGE,),
    subscribers=(ALERT_FORWARDER, OPERATOR),
)
QOS_PLAN = _spec(
    "qos_plan",
    "allocator/plan",
    QosPlan,
    qos=1,
    retained=True,
    publishers=(BANDWIDTH_ALLOCATOR,),
    subscribers=(OPERATOR, CLOUD_BRIDGE, TELEMETRY_RECORDER),
)
PLAN_REQUEST = _spec(
    "plan_request",
    "allocator/request",
    PlanRequest,
    qos=1,
    publishers=(OPERATOR,),
    subscribers=(BANDWIDTH_ALLOCATOR,),
    max_bytes=4 * KIB,
)
PLAN_RESPONSE = _spec(
    "plan_response",
    "allocator/response/{request_id}",
    QosPlan,
    qos=1,
    publishers=(BANDWIDTH_ALLOCATOR,),
    subscribers=(OPERATOR,),
)
UPLINK_USAGE = _spec(
    "uplink_usage",
    "uplink/usage",
    UplinkUsage,
    qos=1,
    retained=True,
    publishers=(CLOUD_BRIDGE,),
    subscribers=(BANDWIDTH_ALLOCATOR, TELEMETRY_RECORDER, OPERATOR),
)
CONFIG = _spec(
    "config",
    "config/{stage}",
    TEXT,  # a JSON object validated by the stage's own runtime-config model
    qos=1,
    retained=True,
    publishers=(OPERATOR, CLOUD_BRIDGE),
    subscribers=(SELF, OPERATOR, CLOUD_BRIDGE),
    max_bytes=64 * KIB,
)
CONFIG_STATE = _spec(
    "config_state",
    "status/{stage}/config",
    ConfigState,
    qos=1,
    retained=True,
    publishers=(SELF,),
    subscribers=(OPERATOR, CLOUD_BRIDGE),
)
STATUS = _spec(
    "status",
    "status/{stage}",
    TEXT,
    qos=1,
    retained=True,
    publishers=(SELF,),
    subscribers=(OPERATOR, CLOUD_BRIDGE, BANDWIDTH_ALLOCATOR),
    max_bytes=64,
)
HEALTH = _spec(
    "health",
    "health/{stage}",
    Health,
    qos=0,
    retained=True,
    publishers=(SELF,),
    subscribers=(OPERATOR, TELEMETRY_RECORDER),
)
METRICS = _spec(
    "metrics",
    "metrics/{stage}",
    Metrics,
    qos=0,
    publishers=(SELF,),
    subscribers=(OPERATOR, TELEMETRY_RECORDER),
)
DEAD_LETTER = _spec(
    "deadletter",
    "deadletter/{stage}",
    DeadLetter,
    qos=1,
    publishers=(SELF,),
    subscribers=(OPERATOR, TELEMETRY_RECORDER),
)

REGISTRY: Final[tuple[TopicSpec, ...]] = (
    FRAME,
    MOTION,
    DETECTIONS,
    SNAPSHOT,
    AUDIO_CHUNK,
    AUDIO_CLASSES,
    GAS_READING,
    GAS_AVERAGE_RESULT,
    EVENT,
    ALERT,
    SUMMARY,
    QOS_LEVELS,
    QOS_KNOB,
    TAKEN,
    QOS_PLAN,
    PLAN_REQUEST,
    PLAN_RESPONSE,
    UPLINK_USAGE,
    CONFIG,
    CONFIG_STATE,
    STATUS,
    HEALTH,
    METRICS,
    DEAD_LETTER,
)


def gateway_root(topic_root: str, gateway_id: str) -> str:
    """``edgegw/<gateway_id>``: the tree of one gateway."""
    if not _PARAM_VALUE.match(gateway_id):
        raise TopicError(f"gateway_id={gateway_id!r} is not a valid topic level")
    return f"{topic_root}/{gateway_id}"
