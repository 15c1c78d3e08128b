"""Settings of the web stage: where it listens, the operator's password, and
how much of the gateway's recent past it keeps for the page."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings


class WebSettings(StageSettings):
    model_config = STAGE_SETTINGS_CONFIG

    web_host: str = Field(
        default="127.0.0.1", min_length=1, description="listen address; localhost by default"
    )
    web_port: int = Field(default=8080, ge=0, le=65535)
    web_password: SecretStr = Field(
        default=SecretStr(""),
        description="the operator's password (the broker's `operator` secret); "
        "empty: nobody can log in and the page is read-only",
    )
    session_ttl_s: float = Field(default=12 * 3600, gt=0)
    max_sessions: int = Field(default=64, ge=1)
    history_s: float = Field(default=3600, gt=0, description="uplink chart span")
    max_history_points: int = Field(default=3600, ge=10)
    max_alerts: int = Field(default=200, ge=1)
    max_snapshots: int = Field(default=48, ge=1)
    thumbnail_px: int = Field(default=160, ge=16, le=1024)
    max_streams: int = Field(default=32, ge=1, description="browsers following live at once")
    stream_queue: int = Field(default=256, ge=8, description="updates held per browser")
    answer_timeout_s: float = Field(default=5.0, gt=0, description="wait for a stage's answer")
