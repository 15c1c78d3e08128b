"""Settings of telemetry-recorder: where InfluxDB is, and how points are batched
and buffered while it cannot be reached."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from services.common.settings import StageSettings


class TelemetryRecorderSettings(StageSettings):
    influx_url: str = Field(
        default="http://localhost:8086",
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="InfluxDB 2 (or any server of its v2 write API)",
    )
    influx_org: str = Field(default="edgegw", min_length=1)
    influx_bucket: str = Field(default="edgegw", min_length=1)
    influx_token: SecretStr = SecretStr("")
    batch_size: int = Field(default=1000, ge=1, le=50_000, description="points per write")
    flush_interval_s: float = Field(
        default=1.0, gt=0, le=300, description="longest a point waits for its batch"
    )
    max_buffered_points: int = Field(
        default=100_000,
        ge=1,
        description="points held while the server is away; beyond, the oldest are dropped",
    )
    write_timeout_s: float = Field(default=10.0, gt=0, le=300, description="per HTTP write")
    retry_initial_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _buffer_holds_a_batch(self) -> TelemetryRecorderSettings:
        if self.max_buffered_points < self.batch_size:
            raise ValueError(
                f"max_buffered_points ({self.max_buffered_points}) must hold "
                f"at least one batch ({self.batch_size})"
            )
        return self
