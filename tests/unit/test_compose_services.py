"""compose/docker-compose.yml: every service has a healthcheck, CPU and memory
limits and rotated logs, and a stage starts only once the broker (and the
telemetry recorder once the time-series server) is healthy. Profiles included:
the scale replica and the cloud bridge are services like the others."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.dynsec import PROBE, PROBE_TOPIC
from broker.generate import env_name

COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"
STAGE_IMAGE = "edgegw-stage"
# Idle RSS measured (tests/bench/memory_bench.py, container_overhead.py), MB;
# stages not listed idle like the light ones. A health probe adds ~41 MB.
IDLE_MB = {
    "camera-capture": 85,
    "audio-capture": 54,
    "audio-classifier": 175,
    "object-detector": 130,
}
LIGHT_IDLE_MB = 50
PROBE_MB = 41
HEADROOM = 1.5
_UNITS = {"k": 1 / 1024, "m": 1, "g": 1024}


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def _stages(services: dict[str, Any]) -> dict[str, str]:
    """Service -> the stage it runs (`edgegw run <stage>`)."""
    return {
        name: service["command"][0]
        for name, service in services.items()
        if service.get("image") == STAGE_IMAGE
    }


def _memory_mb(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg])b?", value.lower()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


SERVICES = sorted(_services())


def test_the_file_has_the_stages_and_the_servers() -> None:
    services = _services()
    assert {"broker", "tsdb", "object-detector", "object-detector-2", "cloud-bridge"} <= set(
        services
    )
    assert len(_stages(services)) == len(services) - 2


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_a_healthcheck(name: str) -> None:
    service = _services()[name]
    check = service.get("healthcheck")
    assert check, f"{name} has no healthcheck"
    assert check["test"] and check["test"][0] in ("CMD", "CMD-SHELL")
    for key in ("interval", "timeout", "start_period"):
        assert check.get(key), f"{name}: healthcheck {key}"
    assert int(check["retries"]) >= 2
    stage = _stages(_services()).get(name)
    if stage is not None:
        assert check["test"] == ["CMD", "edgegw", "health", stage]
        assert check["interval"] == "${EDGEGW_HEALTHCHECK_INTERVAL:-60s}"


def test_the_broker_probe_subscribes_as_its_own_narrow_identity() -> None:
    broker = _services()["broker"]
    probe = " ".join(broker["healthcheck"]["test"][1:])
    assert "mosquitto_sub" in probe and "-W" in probe and "-C 1" in probe
    assert f"-u {PROBE}" in probe and f"-i {PROBE}" in probe
    # $$ is compose's escape for a literal $ (the shell reads the variable).
    assert f"'{PROBE_TOPIC.replace('$', '$$')}'" in probe
    # A refused subscription exits 0 too: the probe must look at the answer.
    assert "| grep" in probe
    password = env_name(PROBE)
    assert f'"$${password}"' in probe
    assert broker["environment"] == {password: "${" + password + "}"}


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_cpu_and_memory_limits(name: str) -> None:
    limits = _services()[name].get("deploy", {}).get("resources", {}).get("limits", {})
    assert float(limits.get("cpus", 0)) > 0, f"{name} has no CPU limit"
    assert "memory" in limits, f"{name} has no memory limit"
    stage = _stages(_services()).get(name)
    if stage is not None:
        wanted = HEADROOM * (IDLE_MB.get(stage, LIGHT_IDLE_MB) + PROBE_MB)
        assert _memory_mb(str(limits["memory"])) >= wanted, f"{name}: {limits['memory']}"


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_rotates_its_log(name: str) -> None:
    logging = _services()[name].get("logging")
    assert logging == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}


def test_stages_wait_for_a_healthy_broker_and_the_recorder_for_the_tsdb() -> None:
    services = _services()
    for name in _stages(services):
        depends = services[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        assert depends.get("broker") == {"condition": "service_healthy"}, name
        for other in depends.values():
            assert other == {"condition": "service_healthy"}, name
    recorder = services["telemetry-recorder"]["depends_on"]
    assert recorder["tsdb"] == {"condition": "service_healthy"}
