"""Settings of metrics-exporter (restart to change)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings


class MetricsExporterSettings(StageSettings):
    model_config = STAGE_SETTINGS_CONFIG

    http_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="address the /metrics endpoint binds; 0.0.0.0 serves the LAN (a container "
        "publishing the port needs it)",
    )
    http_port: int = Field(default=9640, ge=0, le=65535, description="0: any free port")
    stale_after_s: float = Field(
        default=300.0, gt=0, description="a stage silent this long drops out of the scrape"
    )
    max_stages: int = Field(default=500, ge=1, description="stages kept; more are ignored")
