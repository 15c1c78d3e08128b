"""`python -m services.camera_capture`: wiring only.

Exit codes as every stage's (`services.common.entry`), and 2 naming
`EDGEGW_SOURCE` when the source can never work (see `capture.check_source`).
"""

from __future__ import annotations

import sys

from schemas.topics import CAMERA_CAPTURE
from services.camera_capture.capture import SourceError
from services.camera_capture.settings import CameraCaptureSettings
from services.camera_capture.stage import run
from services.common.entry import run_stage_main
from services.common.settings import ENV_PREFIX


def main() -> None:
    try:
        run_stage_main(CAMERA_CAPTURE, CameraCaptureSettings, run)
    except SourceError as error:  # raised before the stage connected
        print(f"invalid setting {ENV_PREFIX}SOURCE: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
