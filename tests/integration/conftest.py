"""One real Mosquitto per test session, with the project's broker config;
each test gets its own gateway id, so its topics never meet another's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.broker import MosquittoBroker, running_broker
from tests.harness.probe import MakeProbe, Probe, Watch, probes_on
from tests.harness.stage_process import StageProcess, StartStage


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    with running_broker(tmp_path_factory.mktemp("broker")) as server:
        yield server


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker of the test's own, which it may pause, kill and restart."""
    with running_broker(tmp_path / "broker") as server:
        yield server


@pytest.fixture
def gateway_id() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def root(gateway_id: str) -> str:
    return f"edgegw/{gateway_id}"


@pytest.fixture
def probe(broker: MosquittoBroker) -> Iterator[MakeProbe]:
    with probes_on(broker) as make:
        yield make


@pytest.fixture
def watch(probe: MakeProbe, root: str) -> Watch:
    def make(*topics: str) -> Probe:
        observer = probe("operator")
        for topic in topics:
            observer.subscribe(f"{root}/{topic}")
        return observer

    return make


@pytest.fixture
def own_probe(own_broker: MosquittoBroker) -> Iterator[MakeProbe]:
    """Probes of `own_broker`, closed at the end of the test."""
    with probes_on(own_broker) as make:
        yield make


@pytest.fixture
def stage(broker: MosquittoBroker, gateway_id: str, tmp_path: Path) -> Iterator[StartStage]:
    started: list[StageProcess] = []
    running: dict[str, StageProcess] = {}  # identity key -> the process using it

    def start(name: str, **env: str) -> StageProcess:
        # The forwarder's outbox file in the test's own folder, not the repo's var/.
        own = {"EDGEGW_OUTBOX_PATH": str(tmp_path / "outbox.db")}
        # A restarted stage gets its identity (and session) back; a second copy
        # running at the same time (two microphones' captures) gets its own,
        # or the bound client id would make them take over each other.
        key = env.get("EDGEGW_INSTANCE", "0")
        copy = 1
        while (holder := running.get(f"{name}/{key}")) is not None and holder.poll() is None:
            copy += 1
            key = f"{env.get('EDGEGW_INSTANCE', '0')}-{copy}"
        identity = broker.env_for(name, gateway_id, key)
        process = StageProcess(name, {**identity, **own, **env}, tmp_path)
        running[f"{name}/{key}"] = process
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
