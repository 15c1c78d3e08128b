"""Deploy requests and the retained state of each deployed analytic.

An operator (or the cloud bridge) publishes a request on `deploy/request`;
the deployer answers on the retained `deploy/state/<analytic>`, which also
holds the accepted request: after a restart the deployer reads its own
retained states back as the desired state and reconciles the engine with them.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from schemas.envelope import Envelope, Model
from schemas.qos import ANALYTIC_NAME_PATTERN, Hosted

# A Docker image reference: [host[:port]/]path[:tag][@sha256:digest]. The
# grammar is docker/distribution's, narrowed to what a gateway accepts.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# A host has a dot or a port, or is localhost (docker's rule): "a/b" is a path.
_DOMAIN = r"[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)"
_HOST = rf"(?:(?:localhost|{_DOMAIN}+|{_DOMAIN}*:[0-9]{{1,5}})/)"
IMAGE_REFERENCE = re.compile(
    rf"^{_HOST}?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
# Environment names the deployer sets itself (broker address, credentials,
# declared topics, the analytic's name and tree): a request may not override
# them. Other EDGEGW_* names are a deployed stage's own settings (its mic,
# its source).
RESERVED_ENV_PREFIXES = ("EDGEGW_MQTT_", "EDGEGW_TOPIC_")
RESERVED_ENV_NAMES = frozenset({"EDGEGW_ANALYTIC", "EDGEGW_GATEWAY_ID", "EDGEGW_REPLICA"})

# Bounds every number here stays within (finite; an integer fits 64 bits).
MAX_KBPS = 1e8
MAX_SECONDS = 1e11
MAX_COUNT = 2**63 - 1

Direction = Literal["publish", "subscribe"]
RestartPolicy = Literal["no", "on-failure"]


class DeclaredTopic(Model):
    """A topic the analytic publishes or subscribes: a registry template by
    name (one of `ANALYTIC_FACING` in schemas/topics.py) and its parameters."""

    spec: str = Field(
        min_length=1, max_length=64, description="registry name, e.g. analytic_output"
    )
    direction: Direction
    params: dict[str, str] = Field(default_factory=dict, max_length=8)


class Limits(Model):
    cpus: float = Field(default=0.5, gt=0, le=64, allow_inf_nan=False, description="CPU cores")
    memory_mb: int = Field(default=64, ge=6, le=65_536, description="memory limit, no swap")
    pids: int = Field(default=64, ge=8, le=4096, description="processes and threads")


class DeploySpec(Model):
    """What an analytic is and how it runs; the deployer keeps it retained."""

    analytic: str = Field(pattern=ANALYTIC_NAME_PATTERN)
    image: str = Field(
        min_length=1, max_length=512, description="tag or digest, in the gateway's registry"
    )
    upload_saving_kbps: float = Field(
        ge=0,
        le=MAX_KBPS,
        allow_inf_nan=False,
        description="upload saved by running here, not in the cloud",
    )
    lifetime_s: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SECONDS,
        allow_inf_nan=False,
        description="removed after this long running",
    )
    limits: Limits = Limits()
    environment: dict[str, str] = Field(default_factory=dict, max_length=64)
    topics: list[DeclaredTopic] = Field(default_factory=list, max_length=16)
    restart: RestartPolicy = "on-failure"
    max_restarts: int = Field(default=2, ge=0, le=100)
    stage: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="an edgegw analytic stage the image runs (`edgegw run <stage>`, the "
        "edgegw-stage image's entry point): it gets that stage's broker role besides its "
        "declared topics; None: the image's own command",
    )

    @field_validator("image")
    @classmethod
    def _image_reference(cls, value: str) -> str:
        if not IMAGE_REFERENCE.match(value):
            raise ValueError(f"{value!r} is not an image reference (name[:tag][@sha256:digest])")
        return value

    @field_validator("environment")
    @classmethod
    def _environment_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, setting in value.items():
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment name ([A-Z][A-Z0-9_]*)")
            if name.startswith(RESERVED_ENV_PREFIXES) or name in RESERVED_ENV_NAMES:
                raise ValueError(f"{name}: set by the deployer")
            if len(setting) > 4096 or "\x00" in setting:
                raise ValueError(f"{name}: value too long or holds NUL")
        return value


class DeployRequest(Envelope):
    action: Literal["deploy"] = "deploy"
    request: DeploySpec


class LifecycleRequest(Envelope):
    """Stop, start again, or remove an analytic the deployer knows."""

    action: Literal["stop", "start", "remove"]
    analytic: str = Field(pattern=ANALYTIC_NAME_PATTERN)


DEPLOY_MODELS = (DeployRequest, LifecycleRequest)

State = Literal[
    "requested",
    "queued",
    "downloading",
    "starting",
    "running",
    "stopped",
    "removed",
    "failed",
    "orphaned",
]
Desired = Literal["running", "stopped", "removed"]


class Download(Model):
    bytes_done: int = Field(ge=0, le=MAX_COUNT)
    bytes_total: int = Field(
        ge=0, le=MAX_COUNT, description="compressed bytes of the layers not on disk"
    )
    layers_total: int = Field(ge=0, le=MAX_COUNT)
    layers_cached: int = Field(
        ge=0, le=MAX_COUNT, description="layers already on disk, not downloaded"
    )
    attempt: int = Field(default=1, ge=1, le=MAX_COUNT)


class Exit(Model):
    code: int = Field(ge=-(2**31), le=2**31 - 1)
    oom_killed: bool
    log_tail: list[str] = Field(default_factory=list, max_length=50)


class AnalyticState(Envelope):
    """Retained on `deploy/state/<analytic>`."""

    analytic: str = Field(pattern=ANALYTIC_NAME_PATTERN)
    state: State
    desired: Desired | None = Field(description="None: not requested (an orphan)")
    reason: str = Field(default="", max_length=4000)
    spec: DeploySpec | None = None
    request_id: str = Field(default="", max_length=128, description="id of the request in force")
    container_id: str | None = None
    queue_position: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    download: Download | None = None
    exit: Exit | None = None
    restarts: int = Field(default=0, ge=0, le=MAX_COUNT)
    started_ts: float | None = Field(default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False)


class Hosting(Envelope):
    """Retained on `deploy/hosting/<analytic>` by the deployer: where the
    analytic runs, so what the allocator charges it (`QosLevel.cost_hosted`).
    The analytic's name is the topic's; cleared (empty) once it is removed,
    together with its retained levels."""

    hosted: Hosted
    state: State = Field(description="the deploy state that decided it")


def hosted_in(state: State) -> Hosted | None:
    """Where an analytic in `state` runs: on the gateway once running; gone
    (None) once removed, and unknown (None) for an orphan nobody requested;
    in the cloud otherwise, its input uploaded raw until it runs here
    (seed 004: a requested analytic is served from the cloud meanwhile)."""
    if state == "running":
        return "gateway"
    if state in ("removed", "orphaned"):
        return None
    return "cloud"


MAX_SLOT_ENTRIES = 256  # analytics / images listed in one slot report (the rest counted)


# Why an image was evicted: the cache passed the start share, or a chosen
# pull needed its space.
EvictionCause = Literal["threshold", "room"]


class EvictedImage(Model):
    image: str = Field(min_length=1, max_length=512)
    freed_bytes: int = Field(ge=0, le=MAX_COUNT, description="compressed bytes of its layers")
    why: EvictionCause = Field(
        description="the cache passed the start share, or a chosen pull needed the space"
    )


class DownloadSlot(Envelope):
    """Retained on `deploy/slot`: what the deployer's last download slot decided."""

    slot: int = Field(ge=0, le=MAX_COUNT)
    planner: str = Field(min_length=1, max_length=32)
    solve_ms: float = Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    budget_bytes: int = Field(ge=0, le=MAX_COUNT, description="the image cache's budget")
    capacity_bytes: int = Field(ge=0, le=MAX_COUNT, description="what the slot may download")
    cache_bytes_before: int = Field(ge=0, le=MAX_COUNT)
    cache_bytes_after: int = Field(ge=0, le=MAX_COUNT, description="after evictions, before pulls")
    planned_bytes: int = Field(ge=0, le=MAX_COUNT, description="new layers of the chosen images")
    saved_kbps: float = Field(ge=0, le=MAX_KBPS * 1e3, allow_inf_nan=False)
    chosen: list[str] = Field(default_factory=list, max_length=MAX_SLOT_ENTRIES)
    deferred: list[str] = Field(default_factory=list, max_length=MAX_SLOT_ENTRIES)
    images: list[str] = Field(default_factory=list, max_length=MAX_SLOT_ENTRIES)
    evicted: list[EvictedImage] = Field(default_factory=list, max_length=MAX_SLOT_ENTRIES)
    cached: list[str] = Field(
        default_factory=list, max_length=MAX_SLOT_ENTRIES, description="images on disk after"
    )
    unlisted: int = Field(default=0, ge=0, le=MAX_COUNT, description="entries over the lists' cap")
