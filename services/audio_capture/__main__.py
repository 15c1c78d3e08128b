"""`python -m services.audio_capture`: wiring only."""

from __future__ import annotations

import asyncio

from services.audio_capture.settings import AudioCaptureSettings
from services.audio_capture.stage import run
from services.common.logs import configure_logging
from services.common.settings import load_settings


def main() -> None:
    settings = load_settings(AudioCaptureSettings)
    configure_logging("audio-capture", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
