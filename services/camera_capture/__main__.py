"""`python -m services.camera_capture`: wiring only."""

from __future__ import annotations

import asyncio

from services.camera_capture.settings import CameraCaptureSettings
from services.camera_capture.stage import run
from services.common.logs import configure_logging
from services.common.settings import load_settings


def main() -> None:
    settings = load_settings(CameraCaptureSettings)
    configure_logging("camera-capture", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
