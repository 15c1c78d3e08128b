"""`python -m services.audio_classifier`: wiring only."""

from __future__ import annotations

from schemas.topics import AUDIO_CLASSIFIER
from services.audio_classifier.settings import AudioClassifierSettings
from services.audio_classifier.stage import run
from services.common.entry import run_stage_main


def main() -> None:
    run_stage_main(AUDIO_CLASSIFIER, AudioClassifierSettings, run)


if __name__ == "__main__":
    main()
