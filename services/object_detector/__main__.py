"""`python -m services.object_detector`: wiring only."""

from __future__ import annotations

from schemas.topics import OBJECT_DETECTOR
from services.common.entry import run_stage_main
from services.object_detector.settings import ObjectDetectorSettings
from services.object_detector.stage import run


def main() -> None:
    run_stage_main(OBJECT_DETECTOR, ObjectDetectorSettings, run)


if __name__ == "__main__":
    main()
