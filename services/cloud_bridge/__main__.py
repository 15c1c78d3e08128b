"""`python -m services.cloud_bridge`: wiring only (two settings: gateway and cloud)."""

from __future__ import annotations

import logging

from schemas.topics import CLOUD_BRIDGE
from services.cloud_bridge.settings import CloudBridgeSettings, CloudSettings
from services.cloud_bridge.stage import run
from services.common.entry import return_large_buffers_to_the_os, run_until_stopped
from services.common.logs import configure_logging
from services.common.settings import load_settings

# aiomqtt warns past 10 publishes awaiting their PUBACK; the uplink keeps a
# window of them on purpose (cloud_in_flight), so the warning is noise here.
_PENDING_PUBLISHES = "There are %d pending publish calls."


def _not_pending_publish_warning(record: logging.LogRecord) -> bool:
    return record.msg != _PENDING_PUBLISHES


def main() -> None:
    return_large_buffers_to_the_os()
    settings = load_settings(CloudBridgeSettings)
    cloud_settings = load_settings(CloudSettings)
    configure_logging(CLOUD_BRIDGE, settings.log_level)
    logging.getLogger("mqtt").addFilter(_not_pending_publish_warning)
    run_until_stopped(run(settings, cloud_settings))


if __name__ == "__main__":
    main()
