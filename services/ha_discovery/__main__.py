"""`python -m services.ha_discovery`: wiring only."""

from __future__ import annotations

from schemas.topics import HA_DISCOVERY
from services.common.entry import run_stage_main
from services.ha_discovery.settings import HaDiscoverySettings
from services.ha_discovery.stage import run


def main() -> None:
    run_stage_main(HA_DISCOVERY, HaDiscoverySettings, run)


if __name__ == "__main__":
    main()
