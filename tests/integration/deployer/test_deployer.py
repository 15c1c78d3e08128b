"""The deployer end to end: a real Docker engine, a real registry, a real
Mosquitto, the deployer as its own process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.harness.broker import MosquittoBroker
from tests.harness.probe import MakeProbe
from tests.integration.deployer.conftest import StartDeployer
from tests.integration.deployer.environment import (
    AnalyticsNetwork,
    drop_local,
    gateway_containers,
    publish_as,
    uses_dynsec,
)
from tests.integration.deployer.helpers import (
    OUTPUT_TOPIC,
    deploy,
    lifecycle,
    states,
    wait_online,
    wait_state,
    watch_states,
)
from tools.local_registry import LocalRegistry

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]
MIB = 1024 * 1024


def test_deploy_pulls_starts_with_limits_publishes_then_remove_clears_it(
    deployer: StartDeployer,
    probe: MakeProbe,
    broker: MosquittoBroker,
    gateway_id: str,
    root: str,
    engine: Any,
    registry: LocalRegistry,
    analytics_network: AnalyticsNetwork,
    images: dict[str, dict[str, Any]],
) -> None:
    drop_local(engine, registry, "hello")
    observer = watch_states(probe, root)
    observer.subscribe(f"{root}/analytic/+/output")
    deployer()
    wait_online(observer, root)
    assert (
        deploy(
            observer,
            root,
            analytic="counter",
            image="edgegw-analytics/hello:1",
            limits={"cpus": 0.25, "memory_mb": 48, "pids": 32},
            environment={"PERIOD_S": "0.2"},
            topics=OUTPUT_TOPIC,
        )
        == 0
    )

    running = wait_state(observer, root, "counter", "running", timeout_s=60)
    seen = [state.state for state in states(observer, root, "counter")]
    assert seen[:3] == ["requested", "queued", "downloading"], seen
    assert seen.index("starting") < seen.index("running")
    download = next(s.download for s in states(observer, root, "counter") if s.download)
    # Only the top layer is downloaded: the registry's manifest says its size.
    layers = images["edgegw-analytics/hello:1"]["layers"]
    assert download is not None and download.bytes_total == layers[-1]["size"]
    assert (download.layers_total, download.layers_cached) == (len(layers), len(layers) - 1)

    container = engine.containers.get(running.container_id)
    host = container.attrs["HostConfig"]
    assert host["NanoCpus"] == 250_000_000
    assert host["Memory"] == 48 * MIB and host["MemorySwap"] == 48 * MIB
    assert host["PidsLimit"] == 32
    assert host["ReadonlyRootfs"] is True and host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    assert host["NetworkMode"] == analytics_network.name
    network = engine.networks.get(analytics_network.name).attrs
    assert network["Internal"] is True
    assert network["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    assert not host.get("Binds") and not container.attrs["Mounts"]
    assert container.attrs["Config"]["User"] == "65534:65534"
    assert container.labels["edgegw.analytic"] == "counter"

    output_topic = f"{root}/analytic/counter/output"
    output = observer.wait_for(lambda m: m.topic == output_topic, count=2)
    assert orjson.loads(output[0].payload)["analytic"] == "counter"

    # Its credentials: its declared topic only, and (one identity per
    # analytic) only under its own client id.
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    user, password = env["EDGEGW_MQTT_USERNAME"], env["EDGEGW_MQTT_PASSWORD"]
    client_id = env["EDGEGW_MQTT_CLIENT_ID"]
    assert env["EDGEGW_TOPIC_ANALYTIC_OUTPUT"] == output_topic
    assert publish_as(broker, user, password, client_id, output_topic) == "0"
    assert publish_as(broker, user, password, client_id, f"{root}/alert/counter") == "135"
    if uses_dynsec(broker):
        assert client_id == user == f"analytic.{gateway_id}.counter"
        assert publish_as(broker, user, password, "analytic.x.other", output_topic).startswith(
            "refused"
        )

    # No way out of the analytics network, and no way to another container.
    probe_run = container.exec_run(["sh", "-c", "nc -w 2 8.8.8.8 53 </dev/null; echo rc=$?"])
    assert b"rc=0" not in probe_run.output

    lifecycle(observer, root, "remove", "counter")
    removed = wait_state(observer, root, "counter", "removed")
    assert removed.desired == "removed"
    assert not engine.containers.list(all=True, filters={"name": container.name})
    if uses_dynsec(broker):  # revoked with the container
        assert publish_as(broker, user, password, client_id, output_topic).startswith("refused")


def test_bad_reference_foreign_registry_and_limits_above_ceilings_fail_naming_why(
    deployer: StartDeployer, probe: MakeProbe, root: str
) -> None:
    observer = watch_states(probe, root)
    deployer(EDGEGW_MAX_MEMORY_MB="128")
    wait_online(observer, root)
    deploy(observer, root, analytic="ghost", image="edgegw-analytics/no-such-image:1")
    deploy(observer, root, analytic="foreign", image="docker.io/library/busybox:1")
    deploy(
        observer,
        root,
        analytic="greedy",
        image="edgegw-analytics/hello:1",
        limits={"memory_mb": 1024},
    )

    ghost = wait_state(observer, root, "ghost", "failed")
    assert ghost.reason.startswith("bad reference"), ghost.reason
    foreign = wait_state(observer, root, "foreign", "failed")
    assert "registry docker.io is not this gateway's" in foreign.reason
    greedy = wait_state(observer, root, "greedy", "failed")
    assert "limits.memory_mb: 1024 above this gateway's 128" in greedy.reason


def test_a_container_that_exits_fails_with_code_and_log_tail_a_memory_hog_as_oom_killed(
    deployer: StartDeployer, probe: MakeProbe, root: str
) -> None:
    observer = watch_states(probe, root)
    deployer()
    wait_online(observer, root)
    deploy(observer, root, analytic="crasher", image="edgegw-analytics/crash:1", max_restarts=1)
    deploy(
        observer,
        root,
        analytic="hog",
        image="edgegw-analytics/hog:1",
        limits={"memory_mb": 16},
        restart="no",
    )

    crashed = wait_state(observer, root, "crasher", "failed", timeout_s=60)
    assert crashed.exit is not None and crashed.exit.code == 3
    assert "giving up" in crashed.exit.log_tail
    assert crashed.reason == "exited with code 3 after 1 restarts"
    assert crashed.restarts == 1

    hog = wait_state(observer, root, "hog", "failed", timeout_s=60)
    assert hog.reason.startswith("OOM-killed"), hog.reason
    assert hog.exit is not None and hog.exit.oom_killed and hog.exit.code == 137


def test_deployer_killed_and_restarted_finds_its_analytic_and_starts_nothing_twice(
    deployer: StartDeployer,
    probe: MakeProbe,
    root: str,
    engine: Any,
    gateway_id: str,
    analytics_network: AnalyticsNetwork,
) -> None:
    observer = watch_states(probe, root)
    first = deployer()
    wait_online(observer, root)
    deploy(observer, root, analytic="steady", image="edgegw-analytics/hello:1", topics=OUTPUT_TOPIC)
    running = wait_state(observer, root, "steady", "running", timeout_s=60)
    started_at = engine.containers.get(running.container_id).attrs["State"]["StartedAt"]
    first.kill()
    first.wait(10)
    # A container with the gateway's labels that no request asked for.
    stray = engine.containers.create(
        "edgegw-analytics/analytic-base:1",
        ["sleep", "60"],
        labels={
            "edgegw.managed-by": "deployer",
            "edgegw.gateway": gateway_id,
            "edgegw.analytic": "stray",
        },
        network=analytics_network.name,
    )
    observer.clear()

    deployer()
    wait_online(observer, root)
    orphan = wait_state(observer, root, "stray", "orphaned")
    assert orphan.desired is None and stray.id[:12] in orphan.reason
    ours = engine.containers.list(
        all=True,
        filters={"label": [f"edgegw.gateway={gateway_id}", "edgegw.analytic=steady"]},
    )
    assert [c.id for c in ours] == [running.container_id]
    assert ours[0].attrs["State"]["StartedAt"] == started_at  # not restarted either
    assert not [s for s in states(observer, root, "steady") if s.state == "starting"]

    lifecycle(observer, root, "remove", "steady")  # it is tracked again
    wait_state(observer, root, "steady", "removed")
    lifecycle(observer, root, "remove", "stray")
    wait_state(observer, root, "stray", "removed")
    assert not gateway_containers(engine, gateway_id)


def test_registry_down_during_a_pull_is_retried_with_backoff_until_it_returns(
    deployer: StartDeployer,
    probe: MakeProbe,
    root: str,
    engine: Any,
    registry: LocalRegistry,
    images: dict[str, dict[str, Any]],
) -> None:
    drop_local(engine, registry, "solo")
    observer = watch_states(probe, root)
    deployer(EDGEGW_PROGRESS_INTERVAL_S="0.005")
    wait_online(observer, root)
    registry.stop()
    try:
        deploy(observer, root, analytic="loner", image="edgegw-analytics/solo:1")
        observer.wait_for(
            lambda m: m.topic.endswith("/deploy/state/loner") and b"retry 2 in" in m.payload,
            timeout_s=30,
        )
        waiting = states(observer, root, "loner")[-1]
        assert waiting.state == "downloading"
        assert waiting.reason.startswith("registry unreachable"), waiting.reason
        # One download slot, first come first served: the next one waits its turn.
        deploy(observer, root, analytic="next", image="edgegw-analytics/hello:1")
        queued = wait_state(observer, root, "next", "queued")
        assert queued.queue_position == 0
        time.sleep(1.5)
        assert [s.state for s in states(observer, root, "next")] == ["requested", "queued"]
    finally:
        registry.start()
    running = wait_state(observer, root, "loner", "running", timeout_s=60)
    after = wait_state(observer, root, "next", "running", timeout_s=60)
    assert after.started_ts is not None and running.started_ts is not None
    assert after.started_ts > running.started_ts
    assert running.container_id is not None
    pulled = [s.download for s in states(observer, root, "loner") if s.download]
    whole = sum(layer["size"] for layer in images["edgegw-analytics/solo:1"]["layers"])
    assert pulled[-1] is not None and pulled[-1].bytes_total == whole  # shares no layer
    assert pulled[-1].attempt >= 3
    # Progress from the pull stream: bytes done grow up to the total.
    done = [d.bytes_done for d in pulled if d is not None and d.attempt == pulled[-1].attempt]
    assert done == sorted(done) and 0 < done[-1] <= whole, done


def test_a_pull_over_the_image_disk_budget_is_refused_before_it_starts(
    deployer: StartDeployer,
    probe: MakeProbe,
    root: str,
    engine: Any,
    registry: LocalRegistry,
    broker: MosquittoBroker,
) -> None:
    drop_local(engine, registry, "solo")
    observer = watch_states(probe, root)
    # The engine is shared (other images come and go): a budget below what
    # any engine here holds; the arithmetic itself is unit-tested.
    deployer(EDGEGW_IMAGE_DISK_BUDGET_MB="1")
    wait_online(observer, root)
    deploy(observer, root, analytic="big", image="edgegw-analytics/solo:1")
    refused = wait_state(observer, root, "big", "failed")
    assert "image disk budget" in refused.reason, refused.reason
    assert "downloading" not in [s.state for s in states(observer, root, "big")]
    assert engine.images.list(name=f"{registry.address}/edgegw-analytics/solo") == []


def test_deployer_killed_mid_pull_resumes_it_after_restart(
    deployer: StartDeployer,
    probe: MakeProbe,
    root: str,
    engine: Any,
    registry: LocalRegistry,
) -> None:
    drop_local(engine, registry, "solo")
    observer = watch_states(probe, root)
    first = deployer()
    wait_online(observer, root)
    registry.stop()  # the pull cannot finish: it is still on when the deployer dies
    try:
        deploy(observer, root, analytic="resumed", image="edgegw-analytics/solo:1")
        wait_state(observer, root, "resumed", "downloading")
        first.kill()
        first.wait(10)
    finally:
        registry.start()
    observer.clear()
    deployer()
    running = wait_state(observer, root, "resumed", "running", timeout_s=60)
    seen = [s.state for s in states(observer, root, "resumed")]
    assert seen[0] == "queued", seen  # taken up again from its retained state
    assert running.request_id and running.spec is not None
    assert len(engine.containers.list(filters={"label": "edgegw.analytic=resumed"})) == 1


def test_an_analytic_pinned_by_digest_is_removed_when_its_lifetime_ends(
    deployer: StartDeployer,
    probe: MakeProbe,
    root: str,
    engine: Any,
    registry: LocalRegistry,
    images: dict[str, dict[str, Any]],
) -> None:
    drop_local(engine, registry, "hello")
    digest = images["edgegw-analytics/hello:2"]["digest"]
    observer = watch_states(probe, root)
    deployer()
    wait_online(observer, root)
    pinned = f"edgegw-analytics/hello@{digest}"
    deploy(observer, root, analytic="brief", image=pinned, lifetime_s=1.5)
    running = wait_state(observer, root, "brief", "running")
    container = engine.containers.get(running.container_id)
    assert container.attrs["Config"]["Image"].endswith(f"/edgegw-analytics/hello@{digest}")
    assert container.attrs["Config"]["Env"].count("VERSION=2") == 1
    removed = wait_state(observer, root, "brief", "removed")
    assert removed.reason == "lifetime of 1.5 s ended"
    assert not engine.containers.list(all=True, filters={"label": "edgegw.analytic=brief"})


def test_without_an_engine_the_deployer_stays_up_degraded_and_requests_wait(
    deployer: StartDeployer, probe: MakeProbe, root: str, tmp_path: Path
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/health/deployer")
    process = deployer(
        EDGEGW_DOCKER_URL=f"unix://{tmp_path}/no-engine.sock", EDGEGW_HEALTH_INTERVAL_S="0.3"
    )
    wait_online(observer, root)
    deploy(observer, root, analytic="patient", image="edgegw-analytics/hello:1")
    health = observer.wait_for(
        lambda m: m.topic == f"{root}/health/deployer" and b"degraded" in m.payload, timeout_s=20
    )
    assert "engine" in health[-1].json()["detail"]
    assert process.poll() is None, process.output()[-2000:]
    assert states(observer, root, "patient") == []  # waiting, not failed
