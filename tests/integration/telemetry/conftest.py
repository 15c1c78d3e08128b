"""A real VictoriaMetrics (Debian's `victoria-metrics`) per test, speaking the
InfluxDB v2 write API the recorder uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.telemetry_helpers import VictoriaMetrics


@pytest.fixture
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(Path(tmp_path_factory.mktemp("victoria")))
    server.start()
    yield server
    server.stop()
