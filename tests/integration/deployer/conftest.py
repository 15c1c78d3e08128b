"""The deployer against a real Docker engine, a real registry (Debian's
`docker-registry` on a free loopback port) and a real Mosquitto.

Analytics run on an internal bridge network with no traffic between
containers; the only host address they reach is the bridge's, where this
session's broker listens (and where the deployer connects to it too). The
example images (tools/analytic_images.py) are built and pushed once per
session; the analytics' own tags are then dropped from the engine, so a
deploy pulls at least their top layer from the registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import docker
import pytest

from tests.harness.broker import MosquittoBroker
from tests.harness.stage_process import StageProcess
from tests.integration.deployer.environment import (
    AnalyticsNetwork,
    BridgeBroker,
    create_network,
    drop_local,
    identity_env,
    remove_gateway_containers,
    remove_network,
)
from tools.analytic_images import build_and_push
from tools.local_registry import LocalRegistry

ANALYTIC_IMAGES = ("hello", "crash", "hog", "solo")


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    client = docker.from_env(version="auto", timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def analytics_network(engine: Any) -> Iterator[AnalyticsNetwork]:
    network = create_network(engine)
    yield network
    remove_network(engine, network.name)


@pytest.fixture(scope="session")
def broker(
    tmp_path_factory: pytest.TempPathFactory, analytics_network: AnalyticsNetwork
) -> Iterator[MosquittoBroker]:
    server = BridgeBroker(tmp_path_factory.mktemp("broker"), analytics_network.gateway)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    server = LocalRegistry(tmp_path_factory.mktemp("registry"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def images(engine: Any, registry: LocalRegistry) -> Iterator[dict[str, dict[str, Any]]]:
    pushed = build_and_push(registry.address, engine)
    for name in ANALYTIC_IMAGES:
        drop_local(engine, registry, name)
    yield pushed
    for name in ANALYTIC_IMAGES:  # what the tests pulled, under this session's registry
        drop_local(engine, registry, name)


class StartDeployer(Protocol):
    def __call__(self, **env: str) -> StageProcess: ...


@pytest.fixture
def deployer(
    broker: MosquittoBroker,
    registry: LocalRegistry,
    images: dict[str, dict[str, Any]],
    analytics_network: AnalyticsNetwork,
    engine: Any,
    gateway_id: str,
    tmp_path: Path,
) -> Iterator[StartDeployer]:
    started: list[StageProcess] = []

    def start(**env: str) -> StageProcess:
        full = {
            **broker.env_for("deployer", gateway_id),
            "EDGEGW_REGISTRY": registry.address,
            "EDGEGW_ANALYTICS_NETWORK": analytics_network.name,
            **identity_env(broker),
            "EDGEGW_RECONCILE_SETTLE_S": "0.5",
            "EDGEGW_WATCH_INTERVAL_S": "0.2",
            "EDGEGW_PULL_RETRY_INITIAL_S": "0.5",
            "EDGEGW_PULL_RETRY_MAX_S": "1.5",
            "EDGEGW_STOP_TIMEOUT_S": "1",
            "EDGEGW_DOWNLOAD_SLOT_S": "0.5",
            **env,
        }
        process = StageProcess("deployer", full, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    remove_gateway_containers(engine, gateway_id)
