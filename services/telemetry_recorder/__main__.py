"""`python -m services.telemetry_recorder`: wiring only."""

from __future__ import annotations

import asyncio

from services.common.logs import configure_logging
from services.common.settings import load_settings
from services.telemetry_recorder.settings import TelemetryRecorderSettings
from services.telemetry_recorder.stage import run


def main() -> None:
    settings = load_settings(TelemetryRecorderSettings)
    configure_logging("telemetry-recorder", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
