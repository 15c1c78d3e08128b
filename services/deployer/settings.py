"""Settings of the deployer: where the engine and the registry are, the
network analytics run on, and the gateway's ceilings a request must fit."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from schemas.envelope import Model
from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings
from services.deployer.download_planner import DEFAULT_TARGET_FRACTION, DEFAULT_TRIGGER_FRACTION


class Ceilings(Model):
    """The most one analytic may ask for on this gateway; a request above
    one of them is refused naming the field."""

    max_cpus: float = Field(default=2.0, gt=0, le=1024, allow_inf_nan=False)
    max_memory_mb: int = Field(default=512, ge=6, le=1_048_576)
    max_pids: int = Field(default=256, ge=8, le=65_536)
    max_lifetime_s: float | None = Field(default=None, gt=0, le=3.2e8, allow_inf_nan=False)
    max_environment_bytes: int = Field(default=32_768, ge=0, le=1_048_576)


class DeployerSettings(StageSettings, Ceilings):
    """Start-up settings; the ceilings are inherited from `Ceilings` (one
    definition each), read from EDGEGW_MAX_* like every other setting."""

    # The settings' own config, not the ceilings' extra="forbid".
    model_config = STAGE_SETTINGS_CONFIG

    docker_url: str = Field(default="unix:///var/run/docker.sock", min_length=1)
    engine_timeout_s: float = Field(default=30.0, gt=0, description="one Docker API call")
    pull_timeout_s: float = Field(default=900.0, gt=0, description="one whole pull")
    registry: str = Field(
        default="127.0.0.1:5000",
        pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description="the local registry (API v2, plain HTTP) images come from",
    )
    analytics_network: str = Field(
        default="edgegw-analytics",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="internal bridge network, no inter-container traffic",
    )
    analytic_broker_host: str | None = Field(
        default=None,
        description="the broker as analytics reach it; default: the network's gateway "
        "address (the broker listens there)",
    )
    analytic_broker_port: int | None = Field(default=None, ge=1, le=65535)
    analytic_user: str = Field(
        default="65534:65534", pattern=r"^[1-9][0-9]*(:[1-9][0-9]*)?$", description="non-root"
    )
    # How analytics get their broker identity (identities.py): one each from
    # the dynamic security plugin, or the registry's shared `analytic` user.
    broker_identities: Literal["dynsec", "shared"] = "shared"
    dynsec_admin_username: str = Field(default="dynsec-admin", min_length=1)
    dynsec_admin_password: SecretStr = SecretStr("")
    analytic_mqtt_username: str = "analytic"
    analytic_mqtt_password: SecretStr = SecretStr("")
    image_disk_budget_mb: float = Field(
        default=20_480, gt=0, description="all the engine's image layers, on disk"
    )
    layer_expansion: float = Field(
        default=2.0, ge=1, description="on-disk size of a layer per compressed byte (estimate)"
    )
    download_slots: int = Field(default=1, ge=1, le=8, description="pulls at a time")
    # Download planning (slots.py): the waiting requests are planned together,
    # a slot at a time, under the slot's download volume (downlink x
    # `download_slot_s`) and the image disk. A slot opens
    # `download_slot_gather_s` after a request starts waiting (a burst is
    # planned as one) once the previous slot's pulls have ended, or, with
    # `download_slot_clock`, every `download_slot_s` as in seed 004.
    # "fifo" pulls each request as it comes, unplanned.
    download_planner: Literal["fifo", "greedy", "exact", "fptas", "seed_dp"] = "greedy"
    download_slot_s: float = Field(
        default=5.0, gt=0, le=86_400, description="a slot's horizon (its download volume)"
    )
    download_slot_clock: bool = Field(
        default=False, description="slots at a fixed period, as seed 004's, empty ones too"
    )
    download_slot_gather_s: float = Field(
        default=0.02, ge=0, le=60, description="a slot opens this long after a request waits"
    )
    exact_time_limit_s: float = Field(
        default=1.0, gt=0, le=600, description="HiGHS's limit for the exact planner"
    )
    downlink_kbps: float | None = Field(
        default=None,
        gt=0,
        le=1e8,
        allow_inf_nan=False,
        description="what the download link carries; None: a slot is bounded by disk only",
    )
    eviction_policy: Literal["LRU", "MRU", "LFU", "MFU"] = "LRU"
    eviction_start_fraction: float = Field(
        default=DEFAULT_TRIGGER_FRACTION,
        gt=0,
        le=1,
        description="evict when the image cache passes this share of the budget",
    )
    eviction_target_fraction: float = Field(
        default=DEFAULT_TARGET_FRACTION, ge=0, le=1, description="... down to this share"
    )
    max_pending: int = Field(default=64, ge=1, description="requests waiting, then refused")
    watch_interval_s: float = Field(default=0.5, gt=0)
    progress_interval_s: float = Field(default=0.5, gt=0, description="least time between two")
    pull_retry_initial_s: float = Field(default=1.0, gt=0)
    pull_retry_max_s: float = Field(default=30.0, gt=0)
    pull_give_up_s: float = Field(default=600.0, gt=0, description="a pull retried this long fails")
    stop_timeout_s: int = Field(default=5, ge=0, le=300)
    log_tail_lines: int = Field(default=10, ge=1, le=50)
    reconcile_settle_s: float = Field(
        default=1.0, ge=0, description="wait for retained states after connecting"
    )

    @model_validator(mode="after")
    def _eviction_fractions(self) -> DeployerSettings:
        if self.eviction_target_fraction > self.eviction_start_fraction:
            raise ValueError("eviction_target_fraction must be <= eviction_start_fraction")
        return self

    def ceilings(self) -> Ceilings:
        return Ceilings.model_validate(self.model_dump(include=set(Ceilings.model_fields)))
