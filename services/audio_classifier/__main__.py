"""`python -m services.audio_classifier`: wiring only."""

from __future__ import annotations

import asyncio

from services.audio_classifier.settings import AudioClassifierSettings
from services.audio_classifier.stage import run
from services.common.logs import configure_logging
from services.common.settings import load_settings


def main() -> None:
    settings = load_settings(AudioClassifierSettings)
    configure_logging("audio-classifier", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
