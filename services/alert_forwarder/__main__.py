"""`python -m services.alert_forwarder`: wiring only."""

from __future__ import annotations

from schemas.topics import ALERT_FORWARDER
from services.alert_forwarder.settings import AlertForwarderSettings
from services.alert_forwarder.stage import run
from services.common.entry import run_stage_main


def main() -> None:
    run_stage_main(ALERT_FORWARDER, AlertForwarderSettings, run)


if __name__ == "__main__":
    main()
