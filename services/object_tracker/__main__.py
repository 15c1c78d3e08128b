"""`python -m services.object_tracker`: wiring only."""

from __future__ import annotations

from schemas.topics import OBJECT_TRACKER
from services.common.entry import run_stage_main
from services.object_tracker.settings import ObjectTrackerSettings
from services.object_tracker.stage import run


def main() -> None:
    run_stage_main(OBJECT_TRACKER, ObjectTrackerSettings, run)


if __name__ == "__main__":
    main()
