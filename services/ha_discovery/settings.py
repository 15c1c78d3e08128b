"""Settings of ha-discovery (restart to change: it has no runtime config)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import STAGE_SETTINGS_CONFIG, StageSettings


class HaDiscoverySettings(StageSettings):
    model_config = STAGE_SETTINGS_CONFIG

    settle_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="after connecting, how long the retained state has to arrive before a "
        "device published earlier and now unknown is removed",
    )
    debounce_s: float = Field(
        default=0.3, ge=0, le=10, description="changes within this long make one re-publish"
    )
    max_devices: int = Field(default=500, ge=1, description="devices kept; more are ignored")
