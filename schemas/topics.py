"""Every topic of edgegw: template, payload, QoS, retention, who may publish
and who may subscribe. Services build topics here, never by hand; the broker's
ACL file is generated from the same table (broker/generate.py).
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from schemas.alerts import Alert, Summary, TakenReceipt, UplinkUsage
from schemas.audio import AudioClasses, SoundEvent
from schemas.deploy import (
    DEPLOY_MODELS,
    AnalyticState,
    DeployRequest,
    DownloadSlot,
    Hosting,
    LifecycleRequest,
)
from schemas.gas import GasAverage, GasEvent, GasReading
from schemas.qos import PlanRequest, QosKnob, QosLevels, QosPlan
from schemas.service import ConfigState, DeadLetter, Health, Metrics
from schemas.topic_spec import KIB, MIB, is_valid_level, spec_of
from schemas.topic_spec import RAW as RAW
from schemas.topic_spec import SELF as SELF
from schemas.topic_spec import TEXT as TEXT
from schemas.topic_spec import AnyTopicSpec as AnyTopicSpec
from schemas.topic_spec import TopicError as TopicError
from schemas.topic_spec import TopicSpec as TopicSpec
from schemas.video import Detections, FrameDetections, MotionScore, ObjectEvent

# Stage names: the MQTT username, the `edgegw run <stage>` name and the
# `services.<stage with underscores>` package.
GAS_REPLAY: Final = "gas-replay"
GAS_AVERAGE: Final = "gas-average"
CAMERA_CAPTURE: Final = "camera-capture"
OBJECT_DETECTOR: Final = "object-detector"
OBJECT_TRACKER: Final = "object-tracker"
AUDIO_CAPTURE: Final = "audio-capture"
AUDIO_CLASSIFIER: Final = "audio-classifier"
ALERT_FORWARDER: Final = "alert-forwarder"
CLOUD_BRIDGE: Final = "cloud-bridge"
BANDWIDTH_ALLOCATOR: Final = "bandwidth-allocator"
TELEMETRY_RECORDER: Final = "telemetry-recorder"
DEPLOYER: Final = "deployer"
HA_DISCOVERY: Final = "ha-discovery"
METRICS_EXPORTER: Final = "metrics-exporter"
# The operator's web page (services/web): reads what an operator reads, and
# publishes only config and dry-run plan requests on the operator's behalf.
WEB: Final = "web"
# The operator's CLI (`edgegw alerts|status|config`) and any dashboard.
OPERATOR: Final = "operator"
# Analytics the deployer runs in containers share this user until each gets
# its own broker identity; they are limited to the ANALYTIC_FACING topics.
DEPLOYED_ANALYTIC: Final = "analytic"

STAGES: Final = (
    GAS_REPLAY,
    GAS_AVERAGE,
    CAMERA_CAPTURE,
    OBJECT_DETECTOR,
    OBJECT_TRACKER,
    AUDIO_CAPTURE,
    AUDIO_CLASSIFIER,
    ALERT_FORWARDER,
    CLOUD_BRIDGE,
    BANDWIDTH_ALLOCATOR,
    TELEMETRY_RECORDER,
    DEPLOYER,
    HA_DISCOVERY,
    METRICS_EXPORTER,
    WEB,
)
# A stage's side connections, each its own identity `<identity>.<side>` with
# the stage's role and password and a bound client id of its own: the
# alert-forwarder's receipt reader (`aux`) and the `edgegw health` probe of a
# container (`health`), which runs beside the stage and its `aux` connection.
SIDE_CONNECTIONS: Final = ("aux", "health")
# Deployed analytics are not a broker user of their own: the deployer creates a
# dynamic-security identity per analytic (its declared topics only).
USERS: Final = (*STAGES, OPERATOR)

# Every lifecycle event on `event/<source>`, told apart by `kind`.
AnyEvent = Annotated[GasEvent | ObjectEvent | SoundEvent, Field(discriminator="kind")]
AnyDeployRequest = Annotated[DeployRequest | LifecycleRequest, Field(discriminator="action")]
EVENT_MODELS: Final = (GasEvent, ObjectEvent, SoundEvent)


ANALYTIC_STAGES: Final = (
    CAMERA_CAPTURE,
    OBJECT_DETECTOR,
    AUDIO_CAPTURE,
    AUDIO_CLASSIFIER,
    GAS_REPLAY,
    GAS_AVERAGE,
)


FRAME = spec_of(
    "frame",
    "camera/{camera}/frame",
    RAW,  # JPEG; seq, capture ts, width and height ride as MQTT 5 user properties
    qos=0,
    publishers=(CAMERA_CAPTURE,),
    subscribers=(OBJECT_DETECTOR,),
    max_bytes=4 * MIB - 64 * KIB,  # room for topic and properties in the broker's 4 MiB packet
)
GAS_READING = spec_of(
    "gas_reading",
    "sensor/gas/{sensor}",
    GasReading,
    qos=1,
    publishers=(GAS_REPLAY,),
    subscribers=(GAS_AVERAGE, TELEMETRY_RECORDER, OPERATOR),
    max_bytes=4 * KIB,
)
GAS_AVERAGE_RESULT = spec_of(
    "gas_average",
    "gas/{sensor}/average",
    GasAverage,
    qos=0,
    publishers=(GAS_AVERAGE,),
    subscribers=(TELEMETRY_RECORDER, OPERATOR, HA_DISCOVERY),
    max_bytes=4 * KIB,
)
EVENT = spec_of(
    "event",
    "event/{source}",
    AnyEvent,
    models=EVENT_MODELS,
    qos=1,
    publishers=(GAS_AVERAGE, OBJECT_TRACKER, AUDIO_CLASSIFIER),
    subscribers=(ALERT_FORWARDER, TELEMETRY_RECORDER, OPERATOR, WEB),
    max_bytes=16 * KIB,
)
MOTION = spec_of(
    "motion",
    "camera/{camera}/motion",
    MotionScore,
    qos=0,
    publishers=(CAMERA_CAPTURE,),
    subscribers=(TELEMETRY_RECORDER, OPERATOR),
    max_bytes=4 * KIB,
)
FRAME_DETECTIONS = spec_of(
    "frame_detections",
    "detections/{camera}/frame",
    FrameDetections,  # every processed frame, from any detector replica
    qos=0,
    publishers=(OBJECT_DETECTOR,),
    subscribers=(OBJECT_TRACKER, OPERATOR),
    max_bytes=4 * MIB - 64 * KIB,  # crops included; room in the broker's 4 MiB packet
)
DETECTIONS = spec_of(
    "detections",
    "detections/{camera}",
    Detections,  # in frame order, with track ids, at the knob's result rate
    qos=0,
    publishers=(OBJECT_TRACKER,),
    subscribers=(TELEMETRY_RECORDER, OPERATOR),
    max_bytes=256 * KIB,
)
SNAPSHOT = spec_of(
    "snapshot",
    "snapshot/{camera}/{label}",
    RAW,  # JPEG of the latest object of that label
    qos=1,
    retained=True,
    publishers=(OBJECT_TRACKER,),
    subscribers=(OPERATOR, CLOUD_BRIDGE, WEB),
    max_bytes=4 * MIB - 64 * KIB,  # room for topic and properties in the broker's 4 MiB packet
)
AUDIO_CHUNK = spec_of(
    "audio_chunk",
    "audio/{mic}/chunk",
    RAW,  # PCM16 mono; seq, capture ts, sample rate, channels as user properties
    qos=0,
    publishers=(AUDIO_CAPTURE,),
    subscribers=(AUDIO_CLASSIFIER,),
    max_bytes=1 * MIB,
)
AUDIO_CLASSES = spec_of(
    "audio_classes",
    "audio/{mic}/classes",
    AudioClasses,
    qos=0,
    publishers=(AUDIO_CLASSIFIER,),
    subscribers=(TELEMETRY_RECORDER, OPERATOR),
    max_bytes=16 * KIB,
)
ALERT = spec_of(
    "alert",
    "alert/{source}",
    Alert,
    qos=1,
    publishers=(ALERT_FORWARDER,),
    subscribers=(CLOUD_BRIDGE, TELEMETRY_RECORDER, OPERATOR, HA_DISCOVERY, WEB),
    max_bytes=32 * KIB,
)
SUMMARY = spec_of(
    "summary",
    "summary/{analytic}",
    Summary,
    qos=1,
    publishers=(*ANALYTIC_STAGES, OBJECT_TRACKER, DEPLOYED_ANALYTIC),
    subscribers=(CLOUD_BRIDGE, TELEMETRY_RECORDER, OPERATOR),
)
QOS_LEVELS = spec_of(
    "qos_levels",
    "qos/{analytic}/levels",
    QosLevels,
    qos=1,
    retained=True,
    # DEPLOYER: clears the retained levels of an analytic it removed.
    publishers=(*ANALYTIC_STAGES, CLOUD_BRIDGE, DEPLOYED_ANALYTIC, DEPLOYER),
    subscribers=(BANDWIDTH_ALLOCATOR, OPERATOR, HA_DISCOVERY, WEB),
)
QOS_KNOB = spec_of(
    "qos_knob",
    "qos/{analytic}",
    QosKnob,
    qos=1,
    retained=True,
    publishers=(BANDWIDTH_ALLOCATOR,),
    subscribers=(*ANALYTIC_STAGES, CLOUD_BRIDGE, OPERATOR, WEB, DEPLOYED_ANALYTIC),
    max_bytes=8 * KIB,
)
TAKEN = spec_of(
    "taken",
    "uplink/taken",
    TakenReceipt,
    qos=1,
    publishers=(CLOUD_BRIDGE,),
    subscribers=(ALERT_FORWARDER, OPERATOR),
)
QOS_PLAN = spec_of(
    "qos_plan",
    "allocator/plan",
    QosPlan,
    qos=1,
    retained=True,
    publishers=(BANDWIDTH_ALLOCATOR,),
    subscribers=(OPERATOR, CLOUD_BRIDGE, TELEMETRY_RECORDER, WEB),
)
PLAN_REQUEST = spec_of(
    "plan_request",
    "allocator/request",
    PlanRequest,
    qos=1,
    publishers=(OPERATOR, WEB),
    subscribers=(BANDWIDTH_ALLOCATOR,),
    max_bytes=4 * KIB,
)
PLAN_RESPONSE = spec_of(
    "plan_response",
    "allocator/response/{request_id}",
    QosPlan,
    qos=1,
    publishers=(BANDWIDTH_ALLOCATOR,),
    subscribers=(OPERATOR, WEB),
)
UPLINK_USAGE = spec_of(
    "uplink_usage",
    "uplink/usage",
    UplinkUsage,
    qos=1,
    retained=True,
    publishers=(CLOUD_BRIDGE,),
    subscribers=(BANDWIDTH_ALLOCATOR, TELEMETRY_RECORDER, OPERATOR, WEB),
)
CONFIG = spec_of(
    "config",
    "config/{stage}",
    TEXT,  # a JSON object validated by the stage's own runtime-config model
    qos=1,
    retained=True,
    publishers=(OPERATOR, CLOUD_BRIDGE, HA_DISCOVERY, WEB),
    subscribers=(SELF, OPERATOR, CLOUD_BRIDGE, HA_DISCOVERY, WEB),
    max_bytes=64 * KIB,
)
CONFIG_STATE = spec_of(
    "config_state",
    "status/{stage}/config",
    ConfigState,
    qos=1,
    retained=True,
    publishers=(SELF,),
    subscribers=(OPERATOR, CLOUD_BRIDGE, HA_DISCOVERY, WEB),
)
STATUS = spec_of(
    "status",
    "status/{stage}",
    TEXT,
    qos=1,
    retained=True,
    publishers=(SELF,),
    # SELF: replicas of a stage share this topic; each one watches it to say
    # `online` again when another replica's will or stop says `offline`.
    subscribers=(SELF, OPERATOR, CLOUD_BRIDGE, BANDWIDTH_ALLOCATOR, HA_DISCOVERY, WEB),
    max_bytes=64,
)
HEALTH = spec_of(
    "health",
    "health/{stage}",
    Health,
    qos=0,
    retained=True,
    publishers=(SELF,),
    # SELF: `edgegw health <stage>` (a container's probe) logs in as the stage.
    subscribers=(SELF, OPERATOR, TELEMETRY_RECORDER, METRICS_EXPORTER, WEB),
)
METRICS = spec_of(
    "metrics",
    "metrics/{stage}",
    Metrics,
    qos=0,
    publishers=(SELF,),
    subscribers=(OPERATOR, TELEMETRY_RECORDER, METRICS_EXPORTER, WEB),
)
DEAD_LETTER = spec_of(
    "deadletter",
    "deadletter/{stage}",
    DeadLetter,
    qos=1,
    publishers=(SELF,),
    subscribers=(OPERATOR, TELEMETRY_RECORDER),
)
DEPLOY_REQUEST = spec_of(
    "deploy_request",
    "deploy/request",
    AnyDeployRequest,
    models=DEPLOY_MODELS,
    qos=1,
    publishers=(OPERATOR, CLOUD_BRIDGE),
    subscribers=(DEPLOYER,),
    max_bytes=64 * KIB,
)
DEPLOY_STATE = spec_of(
    "deploy_state",
    "deploy/state/{analytic}",
    AnalyticState,
    qos=1,
    retained=True,
    publishers=(DEPLOYER,),
    # DEPLOYER: after a restart it reads its own retained states back as the
    # desired state of every analytic.
    subscribers=(DEPLOYER, OPERATOR, CLOUD_BRIDGE, BANDWIDTH_ALLOCATOR),
)
DEPLOY_HOSTING = spec_of(
    "deploy_hosting",
    "deploy/hosting/{analytic}",
    Hosting,  # gateway: priced by its results; cloud: by its raw upload; empty: removed
    qos=1,
    retained=True,
    publishers=(DEPLOYER,),
    subscribers=(BANDWIDTH_ALLOCATOR, OPERATOR, CLOUD_BRIDGE, WEB),
    max_bytes=4 * KIB,
)
DEPLOY_SLOT = spec_of(
    "deploy_slot",
    "deploy/slot",
    DownloadSlot,
    qos=1,
    retained=True,
    publishers=(DEPLOYER,),
    subscribers=(OPERATOR, CLOUD_BRIDGE),
    max_bytes=MIB,  # 5 lists of 256 entries of up to 512 characters
)
ANALYTIC_OUTPUT = spec_of(
    "analytic_output",
    "analytic/{analytic}/output",
    RAW,  # a deployed analytic's results, in its own format
    qos=1,
    publishers=(DEPLOYED_ANALYTIC,),
    subscribers=(OPERATOR, CLOUD_BRIDGE, TELEMETRY_RECORDER),
    max_bytes=256 * KIB,
)

# -- Home Assistant (ha-discovery) ---------------------------------------------
# Home Assistant connects as OPERATOR. Its discovery and birth topics live
# outside the gateway's tree (`rooted=False`); commands come on `.../set` and
# ha-discovery turns them into the retained config they stand for.

HA_DEVICE_CONFIG = spec_of(
    "ha_device_config",
    "homeassistant/device/{device}/config",
    RAW,  # Home Assistant's device discovery JSON; empty removes the device
    qos=1,
    retained=True,
    publishers=(HA_DISCOVERY,),
    subscribers=(HA_DISCOVERY, OPERATOR),
    max_bytes=256 * KIB,
    rooted=False,
)
HA_STATUS = spec_of(
    "ha_status",
    "homeassistant/status",
    TEXT,  # Home Assistant's birth (`online`) and last will (`offline`)
    qos=1,
    publishers=(OPERATOR,),
    subscribers=(HA_DISCOVERY, OPERATOR),
    max_bytes=64,
    rooted=False,
)
CAMERA_SWITCH_SET = spec_of(
    "camera_switch_set",
    "camera/{camera}/{feature}/set",
    TEXT,  # ON / OFF for detect, snapshots or motion (Frigate's convention)
    qos=1,
    publishers=(OPERATOR,),
    subscribers=(HA_DISCOVERY,),
    max_bytes=64,
)
CAMERA_SWITCH_STATE = spec_of(
    "camera_switch_state",
    "camera/{camera}/{feature}/state",
    TEXT,  # ON / OFF as the stage's applied config says
    qos=1,
    retained=True,
    publishers=(HA_DISCOVERY,),
    subscribers=(OPERATOR, HA_DISCOVERY),
    max_bytes=64,
)
BUDGET_SET = spec_of(
    "budget_set",
    "allocator/budget/set",
    TEXT,  # kbit/s: becomes `budget_kbps` in the retained config/bandwidth-allocator
    qos=1,
    publishers=(OPERATOR,),
    subscribers=(HA_DISCOVERY,),
    max_bytes=64,
)
LEVEL_SET = spec_of(
    "level_set",
    "qos/{analytic}/level/set",
    TEXT,  # a level name, or `auto`: becomes the allocator's `pinned_levels`
    qos=1,
    publishers=(OPERATOR,),
    subscribers=(HA_DISCOVERY,),
    max_bytes=128,
)

REGISTRY: Final[tuple[AnyTopicSpec, ...]] = (
    FRAME,
    MOTION,
    FRAME_DETECTIONS,
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
    HA_DEVICE_CONFIG,
    HA_STATUS,
    CAMERA_SWITCH_SET,
    CAMERA_SWITCH_STATE,
    BUDGET_SET,
    LEVEL_SET,
    DEPLOY_REQUEST,
    DEPLOY_STATE,
    DEPLOY_HOSTING,
    DEPLOY_SLOT,
    ANALYTIC_OUTPUT,
)

# What a deployed analytic may declare in its request, and in which direction.
ANALYTIC_FACING: Final[dict[str, tuple[AnyTopicSpec, str]]] = {
    ANALYTIC_OUTPUT.name: (ANALYTIC_OUTPUT, "publish"),
    SUMMARY.name: (SUMMARY, "publish"),
    QOS_LEVELS.name: (QOS_LEVELS, "publish"),
    QOS_KNOB.name: (QOS_KNOB, "subscribe"),
}


def gateway_root(topic_root: str, gateway_id: str) -> str:
    """``edgegw/<gateway_id>``: the tree of one gateway."""
    if not is_valid_level(gateway_id):
        raise TopicError(f"gateway_id={gateway_id!r} is not a valid topic level")
    return f"{topic_root}/{gateway_id}"
