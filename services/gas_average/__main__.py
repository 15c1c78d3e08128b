"""`python -m services.gas_average`: wiring only."""

from __future__ import annotations

import asyncio

from services.common.logs import configure_logging
from services.common.settings import load_settings
from services.gas_average.settings import GasAverageSettings
from services.gas_average.stage import run


def main() -> None:
    settings = load_settings(GasAverageSettings)
    configure_logging("gas-average", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
