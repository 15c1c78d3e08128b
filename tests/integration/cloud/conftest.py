"""Two real brokers: the session's gateway broker (parent conftest) and a
cloud broker of each test's own (TLS, client certificates, persistence)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.probe import MakeProbe, Watch, each_closed
from tests.harness.small_disk import tmpfs
from tests.harness.stage_process import StageProcess, StartStage
from tests.integration.cloud.cloud_broker import CloudBroker, TestPki
from tests.integration.cloud.cloud_probe import CloudProbe, CloudRig, MakeCloudProbe, StartBridge


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def cloud(tmp_path: Path, pki: TestPki) -> Iterator[CloudBroker]:
    server = CloudBroker(tmp_path / "cloud", pki)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cloud_probe(cloud: CloudBroker) -> Iterator[MakeCloudProbe]:
    def make(
        *, ca: Path | None = None, with_client_cert: bool = True, connect_timeout_s: float = 10.0
    ) -> CloudProbe:
        return CloudProbe(
            cloud, ca=ca, with_client_cert=with_client_cert, connect_timeout_s=connect_timeout_s
        )

    with each_closed(make) as tracked:
        yield tracked


@pytest.fixture
def bridge(stage: StartStage, cloud: CloudBroker, tmp_path: Path) -> StartBridge:
    """Start cloud-bridge against the gateway broker and `cloud`; env overrides."""

    def start(**env: str) -> StageProcess:
        defaults = {
            **cloud.bridge_env(),
            "EDGEGW_SPOOL_PATH": str(tmp_path / "spool" / "spool.db"),
            "EDGEGW_BUDGET_KBPS": "100000",
            "EDGEGW_USAGE_INTERVAL_S": "1",
            "EDGEGW_RECONNECT_MAX_S": "1",
        }
        return stage("cloud-bridge", **{**defaults, **env})

    return start


@pytest.fixture
def rig(
    root: str,
    cloud: CloudBroker,
    probe: MakeProbe,
    watch: Watch,
    bridge: StartBridge,
    cloud_probe: MakeCloudProbe,
) -> CloudRig:
    return CloudRig(root, cloud, probe, watch, bridge, cloud_probe)


@pytest.fixture
def spool_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB volume for the spool, to fill."""
    with tmpfs(tmp_path / "spool-disk", "2m") as where:
        yield where
