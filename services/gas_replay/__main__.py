"""`python -m services.gas_replay`: wiring only."""

from __future__ import annotations

import asyncio
import sys

from services.common.logs import configure_logging
from services.common.settings import load_settings
from services.gas_replay.settings import GasReplaySettings
from services.gas_replay.stage import run
from services.gas_replay.trace import TraceError


def main() -> None:
    settings = load_settings(GasReplaySettings)
    configure_logging("gas-replay", settings.log_level)
    try:
        asyncio.run(run(settings))
    except* TraceError as group:
        print(f"invalid setting EDGEGW_TRACE_PATH: {group.exceptions[0]}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
