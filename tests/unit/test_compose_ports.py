"""compose/docker-compose.yml publishes nothing beyond the host's loopback
unless the operator opts in: the broker (no TLS on its listener), the web page,
the metrics exporter and the time-series server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"
# "${VAR:-default}" -> default: what compose uses when the operator set nothing.
_DEFAULTED = re.compile(r"\$\{[A-Z0-9_]+:-([^}]*)\}")


def _published(services: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (name, _DEFAULTED.sub(r"\1", str(port)))
        for name, service in services.items()
        for port in service.get("ports", [])
    ]


def test_every_published_port_binds_the_loopback_by_default() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    published = _published(services)
    assert any(name == "broker" for name, _ in published), "the broker is published"
    for name, port in published:
        host, _, _ = port.partition(":")
        assert host == "127.0.0.1", f"{name} publishes {port} on every interface"
