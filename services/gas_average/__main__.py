"""`python -m services.gas_average`: wiring only."""

from __future__ import annotations

from schemas.topics import GAS_AVERAGE
from services.common.entry import run_stage_main
from services.gas_average.settings import GasAverageSettings
from services.gas_average.stage import run


def main() -> None:
    run_stage_main(GAS_AVERAGE, GasAverageSettings, run)


if __name__ == "__main__":
    main()
