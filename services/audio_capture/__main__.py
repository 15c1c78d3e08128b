"""`python -m services.audio_capture`: wiring only."""

from __future__ import annotations

from schemas.topics import AUDIO_CAPTURE
from services.audio_capture.settings import AudioCaptureSettings
from services.audio_capture.stage import run
from services.common.entry import run_stage_main


def main() -> None:
    run_stage_main(AUDIO_CAPTURE, AudioCaptureSettings, run)


if __name__ == "__main__":
    main()
