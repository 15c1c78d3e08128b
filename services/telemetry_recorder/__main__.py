"""`python -m services.telemetry_recorder`: wiring only."""

from __future__ import annotations

from schemas.topics import TELEMETRY_RECORDER
from services.common.entry import run_stage_main
from services.telemetry_recorder.settings import TelemetryRecorderSettings
from services.telemetry_recorder.stage import run


def main() -> None:
    run_stage_main(TELEMETRY_RECORDER, TelemetryRecorderSettings, run)


if __name__ == "__main__":
    main()
