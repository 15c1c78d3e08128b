"""`python -m services.camera_capture`: wiring only."""

from __future__ import annotations

from schemas.topics import CAMERA_CAPTURE
from services.camera_capture.settings import CameraCaptureSettings
from services.camera_capture.stage import run
from services.common.entry import run_stage_main


def main() -> None:
    run_stage_main(CAMERA_CAPTURE, CameraCaptureSettings, run)


if __name__ == "__main__":
    main()
