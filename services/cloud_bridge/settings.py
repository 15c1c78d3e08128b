"""Settings of cloud-bridge: the gateway side (EDGEGW_*), the cloud side
(EDGEGW_CLOUD_*: host, port, credentials, TLS files) and the runtime config
(retained `config/cloud-bridge`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from schemas.envelope import Model
from services.cloud_bridge.spool import MessageClass
from services.common.settings import STAGE_SETTINGS_CONFIG, SettingsConfigDict, StageSettings


class CloudSettings(StageSettings):
    """The cloud broker: same fields as a stage's broker, under EDGEGW_CLOUD_.

    TLS is on when `EDGEGW_CLOUD_MQTT_TLS_CA` is set; certificate and host name
    are always checked. The topic tree is the gateway's own (`gateway_id` is
    copied from the gateway side), so the cloud sees `edgegw/<gateway_id>/…`.
    """

    model_config = SettingsConfigDict(
        env_prefix="EDGEGW_CLOUD_", extra="ignore", frozen=True, validate_default=True
    )

    mqtt_port: int = Field(default=8883, ge=1, le=65535)
    keepalive_s: int = Field(default=15, ge=2, le=3600)
    reconnect_max_s: float = Field(default=5.0, gt=0)

    def mqtt_client_id(self, stage: str, *, side: str = "") -> str:
        # One cloud broker serves many gateways, none of which it binds here.
        return f"{self.mqtt_identity(stage)}-{self.gateway_id}-{self.instance}"


class CloudBridgeConfig(Model):
    """What an operator (or the cloud) may change at run time."""

    budget_kbps: float = Field(
        default=256.0,
        ge=1e-3,
        le=1e8,
        description="upload budget until the allocator publishes qos/uplink",
    )
    upload_snapshots: bool = Field(
        default=True, description="send camera snapshots to the cloud (at their analytic's rate)"
    )


class CloudBridgeSettings(StageSettings, CloudBridgeConfig):
    model_config = STAGE_SETTINGS_CONFIG

    spool_path: Path = Field(default=Path("data/cloud-bridge/spool.db"))
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, ge=4096)
    spool_ttl_alert_s: float | None = Field(default=7 * 24 * 3600.0, gt=0)
    spool_ttl_summary_s: float | None = Field(default=24 * 3600.0, gt=0)
    spool_ttl_status_s: float | None = Field(default=3600.0, gt=0)
    burst_s: float = Field(default=1.0, gt=0, description="bucket depth, in seconds of budget")
    live_reserve_share: float = Field(
        default=0.25,
        ge=0,
        le=0.5,
        description="share of the bucket only live messages may spend (token_bucket.py)",
    )
    live_queue: int = Field(default=1024, ge=1, description="live messages held ahead of backlog")
    drain_page: int = Field(default=256, ge=1, le=10_000)
    cloud_publish_timeout_s: float = Field(default=5.0, gt=0)
    cloud_in_flight: int = Field(default=32, ge=1, le=1000, description="PUBACKs awaited at once")
    mark_delivered_every_s: float = Field(default=0.2, gt=0)
    usage_interval_s: float = Field(default=5.0, gt=0)
    usage_window_s: float = Field(default=60.0, gt=0)
    spool_full_retry_s: float = Field(default=0.5, gt=0)
    receipts_every_s: float = Field(
        default=0.1, gt=0, le=10, description="how often uplink/taken receipts go out"
    )
    receipts_batch: int = Field(default=500, ge=1, le=1000, description="ids per receipt")
    snapshots_pending_max: int = Field(
        default=64, ge=1, le=10_000, description="snapshot topics waiting; past it the oldest go"
    )
    receipts_buffer: int = Field(
        default=20_000, ge=1, description="ids waiting for a receipt; past it the oldest go"
    )

    def startup_config(self) -> CloudBridgeConfig:
        return self.runtime_part(CloudBridgeConfig)

    def ttl_s(self) -> dict[MessageClass, float | None]:
        return {
            "alert": self.spool_ttl_alert_s,
            "summary": self.spool_ttl_summary_s,
            "status": self.spool_ttl_status_s,
        }
