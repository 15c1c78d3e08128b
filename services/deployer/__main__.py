"""`python -m services.deployer`: wiring only."""

from __future__ import annotations

from schemas.topics import DEPLOYER
from services.common.entry import run_stage_main
from services.deployer.settings import DeployerSettings
from services.deployer.stage import run


def main() -> None:
    run_stage_main(DEPLOYER, DeployerSettings, run)


if __name__ == "__main__":
    main()
