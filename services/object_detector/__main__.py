"""`python -m services.object_detector`: wiring only."""

from __future__ import annotations

import asyncio

from services.common.logs import configure_logging
from services.common.settings import load_settings
from services.object_detector.settings import ObjectDetectorSettings
from services.object_detector.stage import run


def main() -> None:
    settings = load_settings(ObjectDetectorSettings)
    configure_logging("object-detector", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
