"""`python -m services.cloud_bridge`: wiring only (two settings: gateway and cloud)."""

from __future__ import annotations

import asyncio

from schemas.topics import CLOUD_BRIDGE
from services.cloud_bridge.settings import CloudBridgeSettings, CloudSettings
from services.cloud_bridge.stage import run
from services.common.logs import configure_logging
from services.common.settings import load_settings


def main() -> None:
    settings = load_settings(CloudBridgeSettings)
    cloud_settings = load_settings(CloudSettings)
    configure_logging(CLOUD_BRIDGE, settings.log_level)
    asyncio.run(run(settings, cloud_settings))


if __name__ == "__main__":
    main()
