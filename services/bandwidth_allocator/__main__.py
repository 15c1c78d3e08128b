"""`python -m services.bandwidth_allocator`: wiring only."""

from __future__ import annotations

from schemas.topics import BANDWIDTH_ALLOCATOR
from services.bandwidth_allocator.settings import BandwidthAllocatorSettings
from services.bandwidth_allocator.stage import run
from services.common.entry import run_stage_main


def main() -> None:
    run_stage_main(BANDWIDTH_ALLOCATOR, BandwidthAllocatorSettings, run)


if __name__ == "__main__":
    main()
