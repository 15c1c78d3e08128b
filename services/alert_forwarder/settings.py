"""Settings of alert-forwarder: the runtime config (rules and fusion, retained
`config/alert-forwarder`), plus webhook limits that only a restart changes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

import orjson
from pydantic import Field, ValidationError, field_validator, model_validator

from schemas.envelope import Model, field_error
from schemas.topic_spec import is_valid_level
from services.alert_forwarder.fusion import FusionConfig
from services.alert_forwarder.rules import AlertRulesConfig
from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings

Severity = Literal["info", "warning", "critical"]


class AlertForwarderConfig(Model):
    """What an operator may change at run time."""

    rules: AlertRulesConfig = AlertRulesConfig()
    fusion: FusionConfig = FusionConfig()

    @model_validator(mode="after")
    def _places_are_topic_levels(self) -> Self:
        for source, place in self.fusion.places.items():
            # A place becomes a topic level (`alert/<place>`): it must be one.
            if not is_valid_level(place):
                raise field_error(
                    f"fusion.places[{source!r}]",
                    f"{place!r} is not a valid topic level "
                    "(letters, digits, '_', '.', '-'; at most 64)",
                )
        return self


class AlertForwarderSettings(StageSettings, AlertForwarderConfig):
    """`rules` and `fusion` (EDGEGW_RULES, EDGEGW_FUSION: JSON) are the config
    in force until a retained config arrives; EDGEGW_STARTUP_CONFIG, the whole
    config as one JSON object, replaces them when set."""

    model_config = STAGE_SETTINGS_CONFIG

    startup_config: str = Field(
        default="",
        description="JSON of AlertForwarderConfig in force until a retained config arrives",
    )
    tick_interval_s: float = Field(default=1.0, gt=0, le=60)
    webhook_urls: str = Field(default="", description="comma-separated http(s) URLs to POST to")
    webhook_min_severity: Severity = "warning"
    webhook_queue: int = Field(default=256, ge=1, le=100_000, description="alerts waiting to post")
    webhook_retries: int = Field(default=3, ge=0, le=20)
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=120)
    webhook_retry_initial_s: float = Field(default=0.5, gt=0, le=600)
    confirm_with_bridge: bool = Field(
        default=True,
        description="keep each alert until cloud-bridge confirms it on uplink/taken and "
        "publish it again until then; false (no bridge): the gateway broker's PUBACK is "
        "the last confirmation, so a broker crash within its autosave window loses alerts",
    )
    confirm_timeout_s: float = Field(
        default=3.0, gt=0, le=600, description="first re-send of an unconfirmed alert"
    )
    confirm_backoff_cap_s: float = Field(
        default=60.0, gt=0, le=3600, description="longest wait between re-sends of one alert"
    )
    outbox_max: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="unconfirmed alerts held; when reached, events wait at the broker",
    )
    resend_batch: int = Field(default=200, ge=1, le=10_000, description="re-sends per round")
    outbox_path: Path | None = Field(
        default=None,
        description="file of the alerts awaiting the bridge's receipt, kept across restarts; "
        "default var/alert-forwarder/<topic_root>-<gateway_id>.db",
    )

    def outbox_file(self) -> Path:
        if self.outbox_path is not None:
            return self.outbox_path
        return Path("var/alert-forwarder") / f"{self.topic_root}-{self.gateway_id}.db"

    @field_validator("startup_config")
    @classmethod
    def _valid_config(cls, value: str) -> str:
        if value.strip():
            try:
                AlertForwarderConfig.model_validate(orjson.loads(value))
            except (orjson.JSONDecodeError, ValidationError) as error:
                raise ValueError(f"not a valid alert-forwarder config: {error}") from None
        return value

    @model_validator(mode="after")
    def _cap_above_timeout(self) -> Self:
        if self.confirm_backoff_cap_s < self.confirm_timeout_s:
            raise ValueError("confirm_backoff_cap_s: must be >= confirm_timeout_s")
        return self

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, value: str) -> str:
        for url in cls.split_urls(value):
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return value

    @staticmethod
    def split_urls(value: str) -> list[str]:
        return [url.strip() for url in value.split(",") if url.strip()]

    def urls(self) -> list[str]:
        return self.split_urls(self.webhook_urls)

    def initial_config(self) -> AlertForwarderConfig:
        if not self.startup_config.strip():
            return self.runtime_part(AlertForwarderConfig)
        return AlertForwarderConfig.model_validate(orjson.loads(self.startup_config))
