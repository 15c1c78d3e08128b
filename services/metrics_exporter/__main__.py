"""`python -m services.metrics_exporter`: wiring only."""

from __future__ import annotations

from schemas.topics import METRICS_EXPORTER
from services.common.entry import run_stage_main
from services.metrics_exporter.settings import MetricsExporterSettings
from services.metrics_exporter.stage import run


def main() -> None:
    run_stage_main(METRICS_EXPORTER, MetricsExporterSettings, run)


if __name__ == "__main__":
    main()
