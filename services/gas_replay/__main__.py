"""`python -m services.gas_replay`: wiring only."""

from __future__ import annotations

import sys

from schemas.topics import GAS_REPLAY
from services.common.entry import run_stage_main
from services.gas_replay.settings import GasReplaySettings
from services.gas_replay.stage import run
from services.gas_replay.trace import TraceError


def main() -> None:
    try:
        run_stage_main(GAS_REPLAY, GasReplaySettings, run)
    except* TraceError as group:
        print(f"invalid setting EDGEGW_TRACE_PATH: {group.exceptions[0]}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
