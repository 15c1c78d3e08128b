"""The gateway as a Docker swarm stack (deploy/swarm/, tools/swarm.py) on a
real single-node swarm of the engine `make test` sets up: `docker swarm init`
when the engine is in none (and `docker swarm leave` at the end then), images
from a Debian docker-registry on a free port, a TLS cloud Mosquitto on this
host for the bridge. The stack comes up and alerts reach the cloud; three
detector replicas split the frames (each frame once, each replica its own
broker identity) with no duplicate events; a killed detector task is
replaced by swarm in its slot and no alert goes missing; `docker stack rm`
leaves no service, container, network, secret or config, only the volumes
(documented), which the test then removes."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from schemas.topics import STAGES
from tests.harness.broker import free_port
from tests.harness.probe import PahoCollector, Seen, wait_until
from tests.integration.cloud.cloud_probe import CloudProbe
from tools import swarm
from tools.compose_check import start_cloud
from tools.local_registry import LocalRegistry

STACK = "edgegw-swarm-test"
TAG = "swarm-test"
ROOT = "edgegw/gw1"
DETECTOR = f"{STACK}_object-detector"
# Every stage of stack.yml and cloud.yml (the deployer is not in the stack).
RUNNING = sorted(set(STAGES) - {"deployer"})


@dataclass(frozen=True)
class Pushed:
    """The stack's images, built and pushed once for this module's tests."""

    registry: LocalRegistry
    images: dict[str, str]
    build_and_push_s: float


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushed]:
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    registry.start()
    try:
        started = time.monotonic()
        images = swarm.build_and_push(registry.address, TAG)
        yield Pushed(registry, images, round(time.monotonic() - started, 1))
    finally:
        for name in swarm.IMAGES:
            swarm.docker("image", "rm", f"{registry.address}/{name}:{TAG}", check=False)
        registry.stop()


class GatewayWatch(PahoCollector):
    """The operator on the stack's published broker port, subscribed to the tree."""

    _label = "gateway: "
    _waits_through_refusals = True

    def __init__(self, port: int, password: str, timeout_s: float) -> None:
        super().__init__(f"swarm-test-{uuid.uuid4().hex[:8]}")
        self._client.username_pw_set("operator", password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self._connect("127.0.0.1", port, 5):
                    return
            except OSError:
                pass  # the broker's task has not bound its port yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"no broker on 127.0.0.1:{port} after {timeout_s} s")
            time.sleep(1)

    def _on_accepted(self, client: mqtt.Client) -> None:
        client.subscribe(f"{ROOT}/#", 1)


def _under(kind: str, since: float = 0.0) -> Callable[[Seen], bool]:
    return lambda m: m.topic.startswith(f"{ROOT}/{kind}/") and m.at >= since


def _alert_of(kind: str) -> Callable[[Seen], bool]:
    part = f'"kind":"{kind}"'.encode()
    return lambda m: _under("alert")(m) and part in m.payload


def _frames(watch: GatewayWatch, since: float) -> list[dict[str, Any]]:
    frames = watch.received(lambda m: m.topic.endswith("/frame") and m.at >= since)
    return [m.json() for m in frames if "/detections/" in m.topic]


def _processed_twice(frames: list[dict[str, Any]]) -> int:
    return sum(1 for n in Counter((f["camera"], f["seq"]) for f in frames).values() if n > 1)


def _ids(messages: list[Seen]) -> list[str]:
    return [str(m.json()["id"]) for m in messages]


def _await(what: str, check: Callable[[], bool], timeout_s: float, step_s: float = 0.5) -> float:
    """Poll `check()` until true; seconds it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s} s"
        time.sleep(step_s)
    return round(time.monotonic() - started, 1)


def _task_slot(container: str) -> int:
    task = swarm.docker(
        "inspect", "--format", '{{index .Config.Labels "com.docker.swarm.task.name"}}', container
    )
    return int(task.strip().rsplit(".", 2)[1])  # <service>.<slot>.<task id>


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_the_swarm_stack_scales_the_detector_survives_a_kill_and_leaves_nothing(
    tmp_path: Path, pushed: Pushed
) -> None:
    timings: dict[str, Any] = {}
    registry, images = pushed.registry, pushed.images
    cloud, cloud_env = start_cloud(tmp_path)
    cloud_secrets = Path(cloud_env["EDGEGW_CLOUD_SECRETS"])
    (cloud_secrets / "password").write_text(cloud_env["EDGEGW_CLOUD_PASSWORD"])
    initialised = swarm.ensure_swarm()
    swarm.label_gateway_node()
    watch: GatewayWatch | None = None
    upstairs: CloudProbe | None = None
    try:
        timings["build_and_push_s"] = pushed.build_and_push_s
        passwords = swarm.write_secrets(tmp_path / "secrets")
        broker_port = free_port()
        env = swarm.deploy_env(
            registry.address,
            TAG,
            tmp_path / "secrets",
            {
                "EDGEGW_CLOUD_SECRETS": str(cloud_secrets),
                "EDGEGW_CLOUD_HOST": cloud_env["EDGEGW_CLOUD_HOST"],
                "EDGEGW_CLOUD_PORT": cloud_env["EDGEGW_CLOUD_PORT"],
                "EDGEGW_CLOUD_USERNAME": cloud_env["EDGEGW_CLOUD_USERNAME"],
                "EDGEGW_BROKER_PORT": str(broker_port),
                "EDGEGW_WEB_PORT": str(free_port()),
            },
        )
        upstairs = CloudProbe(cloud)
        upstairs.subscribe(f"{ROOT}/alert/#")
        started = time.monotonic()
        swarm.deploy(STACK, swarm.stack_files(cloud=True, publish=True), env)
        timings["deploy_s"] = round(time.monotonic() - started, 1)
        gateway = watch = GatewayWatch(broker_port, passwords["operator"], timeout_s=300)

        # Up: every stage online, object and sound alerts at the gateway and the cloud.
        def online() -> set[str]:
            found = gateway.received(lambda m: m.payload == b"online" and "/status/" in m.topic)
            return {m.topic.rsplit("/", 1)[1] for m in found}

        timings["all_online_s"] = _await(
            "every stage online", lambda: set(RUNNING) <= online(), 300
        )
        for kind in ("object", "sound"):
            gateway.wait_for(_alert_of(kind), 1, 300)
        upstairs.wait_for(_under("alert"), 1, 120)
        timings["alerts_at_cloud_s"] = round(time.monotonic() - started, 1)
        assert swarm.wait_converged(STACK, 120)

        # Three replicas: each frame processed by one of them, each its own identity.
        scaled_at = time.time()
        swarm.docker("service", "scale", "-d", f"{DETECTOR}=3")

        def instances() -> set[str]:
            return {f["instance"] for f in _frames(gateway, scaled_at)}

        timings["three_replicas_working_s"] = _await(
            "3 replicas", lambda: len(instances()) >= 3, 300
        )
        time.sleep(30)
        frames = _frames(gateway, scaled_at)
        events = [m.json() for m in gateway.received(_under("event", scaled_at))]
        new_events = Counter(e["event_id"] for e in events if e["type"] == "new")
        timings["three_replicas"] = {
            "frames": len(frames),
            "frames_by_replica": dict(Counter(f["instance"] for f in frames)),
            "frames_processed_twice": _processed_twice(frames),
            "new_events": len(new_events),
            "duplicate_new_events": sum(1 for n in new_events.values() if n > 1),
        }
        assert instances() == {"1", "2", "3"}
        assert timings["three_replicas"]["frames_processed_twice"] == 0
        assert timings["three_replicas"]["duplicate_new_events"] == 0

        # A killed detector task: swarm starts another in its slot; nothing lost.
        victim = swarm.containers(DETECTOR)[0]
        slot = _task_slot(victim)
        killed_at = time.time()
        swarm.docker("kill", victim)

        def replaced() -> bool:
            running = [c for c in swarm.containers(DETECTOR) if c != victim]
            return len(running) == 3 and slot in {_task_slot(c) for c in running}

        timings["task_replaced_s"] = _await("task replaced", replaced, 180, 1)

        def slot_back() -> bool:
            return str(slot) in {f["instance"] for f in _frames(gateway, killed_at + 1)}

        timings["replica_detecting_again_s"] = _await("replica back", slot_back, 240)
        # Alerts keep coming after the kill, and every one reaches the cloud.
        gateway.wait_for(_under("alert", killed_at), 1, 300)
        time.sleep(10)
        at_gateway = set(_ids(gateway.received(_under("alert", killed_at - 30))))
        wait_until(
            upstairs.received,
            lambda m: _under("alert")(m) and m.json()["id"] in at_gateway,
            len(at_gateway),
            120,
            "cloud: ",
        )
        failed = [t for t in swarm.tasks(DETECTOR) if t["DesiredState"] == "Shutdown"]
        timings["after_kill"] = {
            "alerts_at_gateway": len(at_gateway),
            "all_at_cloud": True,
            "failed_tasks": len(failed),
            "killed_slot": slot,
        }
        assert failed, "swarm shows no task of the killed container"

        # docker stack rm: nothing left but the volumes, which swarm never removes.
        watch.close()
        watch = None
        started = time.monotonic()
        left = swarm.remove(STACK, volumes=False)
        timings["stack_rm_s"] = round(time.monotonic() - started, 1)
        volumes = left.pop("volumes")
        assert left == {k: [] for k in left}, left
        assert sorted(volumes) == sorted(
            f"{STACK}_{name}"
            for name in ("broker-data", "forwarder-outbox", "tsdb-data", "bridge-spool")
        )
        timings["left_after_rm"] = {"volumes": sorted(volumes)}
        assert set(images) == set(swarm.IMAGES)
    finally:
        if watch is not None:
            watch.close()
        if upstairs is not None:
            upstairs.close()
        swarm.remove(STACK, volumes=True)
        swarm.label_gateway_node(add=False)
        if initialised:
            swarm.docker("swarm", "leave", "--force", check=False)
        cloud.stop()
        print(orjson.dumps({"swarm_test_timings": timings}).decode())


def _running_tasks(service: str) -> list[dict[str, str]]:
    return [
        t
        for t in swarm.tasks(service)
        if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running")
    ]


def _node_tasks(service: str) -> dict[int, str]:
    """Slot -> node of the service's running tasks."""
    return {int(t["Name"].rsplit(".", 1)[1]): t["Node"] for t in _running_tasks(service)}


def _node_state(node_id: str) -> str:
    return swarm.docker("node", "inspect", "--format", "{{.Status.State}}", node_id).strip()


def _running_elsewhere(service: str, node: str, slot: int) -> bool:
    """A task of `service` (of `slot`, if not 0) runs on a node other than `node`."""
    return any(
        t["Node"] != node and (not slot or t["Name"].rsplit(".", 1)[1] == str(slot))
        for t in _running_tasks(service)
    )


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_a_second_node_in_its_own_network_namespace_runs_a_detector_replica(
    tmp_path: Path, pushed: Pushed
) -> None:
    """tools/swarm_node.py: a second dockerd in a network namespace joins as a
    worker, pulls 127.0.0.1:<port>/... through its forwarder, and a detector
    replica placed there detects frames over the overlay; alerts keep flowing."""
    from tools import swarm_node

    stack = "edgegw-swarm-node-test"
    detector = f"{stack}_object-detector"
    timings: dict[str, Any] = {}
    registry = pushed.registry
    initialised = swarm.ensure_swarm()
    swarm.label_gateway_node()
    node = swarm_node.Node()
    watch: GatewayWatch | None = None
    try:
        started = time.monotonic()
        node_id = swarm_node.up(node, [registry.port])
        timings["node_up_s"] = round(time.monotonic() - started, 1)
        nodes = swarm.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").split("\n")
        assert f"{node.name} Ready" in nodes, nodes
        passwords = swarm.write_secrets(tmp_path / "secrets")
        broker_port = free_port()
        extra = {"EDGEGW_BROKER_PORT": str(broker_port), "EDGEGW_WEB_PORT": str(free_port())}
        env = swarm.deploy_env(registry.address, TAG, tmp_path / "secrets", extra)
        started = time.monotonic()
        swarm.deploy(stack, swarm.stack_files(cloud=False, publish=True), env)
        gateway = watch = GatewayWatch(broker_port, passwords["operator"], timeout_s=300)
        gateway.wait_for(_alert_of("object"), 1, 300)
        timings["object_alert_s"] = round(time.monotonic() - started, 1)

        # Two replicas: swarm spreads them, one on each node.
        scaled_at = time.time()
        swarm.docker("service", "scale", "-d", f"{detector}=2")

        def on_node2() -> list[int]:
            return [slot for slot, at in _node_tasks(detector).items() if at == node.name]

        timings["replica_on_node2_running_s"] = _await(
            "a replica on node2", lambda: bool(on_node2()), 240, 1
        )
        (slot,) = on_node2()

        def detecting() -> bool:
            return str(slot) in {f["instance"] for f in _frames(gateway, scaled_at)}

        timings["node2_replica_detecting_s"] = _await("node2 replica detects", detecting, 120)
        window_at = time.time()
        time.sleep(30)
        frames = _frames(gateway, window_at)
        placement = _node_tasks(detector)
        alerts = gateway.received(_alert_of("object"))
        timings["two_nodes"] = {
            "detector_slot_by_node": {str(s): at for s, at in sorted(placement.items())},
            "frames_in_30s_by_slot": dict(sorted(Counter(f["instance"] for f in frames).items())),
            "frames_processed_twice": _processed_twice(frames),
            "object_alerts_since_scale": len([m for m in alerts if m.at >= scaled_at]),
            "tasks_on_node2": sorted(
                name.rsplit(".", 1)[0].removeprefix(f"{stack}_")
                for name in swarm.docker(
                    "node",
                    "ps",
                    node_id,
                    "--filter",
                    "desired-state=running",
                    "--format",
                    "{{.Name}}",
                ).split()
            ),
        }
        assert placement[slot] == node.name
        # Every stage swarm put on node2 reaches the broker over the overlay.
        online = {
            m.topic.rsplit("/", 1)[1]
            for m in gateway.received(lambda m: m.payload == b"online" and "/status/" in m.topic)
        }
        assert set(timings["two_nodes"]["tasks_on_node2"]) <= online, online
        assert {str(s) for s in placement} <= set(timings["two_nodes"]["frames_in_30s_by_slot"])
        assert timings["two_nodes"]["frames_processed_twice"] == 0
        gateway.wait_for(_under("alert", scaled_at), 1, 120)
        # The node's engine runs the replica (not the main engine).
        running = node.docker(
            "ps", "--filter", f"label=com.docker.swarm.service.name={detector}", "-q"
        ).split()
        assert len(running) == 1, running

        # node2 fails: its link goes down (power or network lost). The manager
        # marks it down and starts its tasks on the manager; detection and
        # alerts go on. Then it comes back, and swarm stops its stale tasks.
        node2_ran: list[str] = timings["two_nodes"]["tasks_on_node2"]
        # Slot `slot` of the detector, any task of every other service node2 ran.
        wanted = {
            f"{stack}_{name}": slot if f"{stack}_{name}" == detector else 0 for name in node2_ran
        }
        started = time.monotonic()
        swarm_node.cut_off(node)
        timings["node2_down_s"] = _await("node2 down", lambda: _node_state(node_id) == "down", 120)
        down_at = time.time()

        def all_back_on_manager() -> bool:
            return all(_running_elsewhere(name, node.name, k) for name, k in wanted.items())

        timings["node2_tasks_on_manager_s"] = _await(
            "node2's tasks running on the manager", all_back_on_manager, 180, 1
        )

        def slot_detecting_again() -> bool:
            return str(slot) in {f["instance"] for f in _frames(gateway, down_at)}

        _await("the slot detecting again", slot_detecting_again, 120)
        timings["slot_detecting_again_after_cut_s"] = round(time.monotonic() - started, 1)
        gateway.wait_for(lambda m: _alert_of("object")(m) and m.at >= down_at, 1, 120)
        timings["object_alert_after_cut_s"] = round(time.monotonic() - started, 1)

        def online_again() -> set[str]:
            return {
                m.topic.rsplit("/", 1)[1]
                for m in gateway.received(
                    lambda m: m.payload == b"online" and "/status/" in m.topic and m.at >= down_at
                )
            }

        _await("node2's stages online again", lambda: set(node2_ran) <= online_again(), 120)
        timings["online_again_after_cut"] = sorted(online_again())

        swarm_node.cut_off(node, connected=True)
        started = time.monotonic()
        timings["node2_ready_again_s"] = _await(
            "node2 ready again", lambda: _node_state(node_id) == "ready", 120
        )

        def stale_tasks_stopped() -> bool:
            return not node.docker("ps", "-q", check=False).split()

        _await("node2's stale containers stopped", stale_tasks_stopped, 120, 1)
        timings["node2_stale_stopped_s"] = round(time.monotonic() - started, 1)
        # Both slots detect again, from the manager, and no frame twice.
        window_at = time.time()
        time.sleep(10)
        frames = _frames(gateway, window_at)
        timings["after_return"] = {
            "detector_slot_by_node": {
                str(s): at for s, at in sorted(_node_tasks(detector).items())
            },
            "frames_in_10s_by_slot": dict(sorted(Counter(f["instance"] for f in frames).items())),
            "frames_processed_twice": _processed_twice(frames),
        }
        assert set(timings["after_return"]["detector_slot_by_node"].values()) == {
            swarm.docker("info", "--format", "{{.Name}}").strip()
        }
        assert set(timings["after_return"]["frames_in_10s_by_slot"]) == {"1", "2"}
        assert timings["after_return"]["frames_processed_twice"] == 0
        watch.close()
        watch = None
    finally:
        if watch is not None:
            watch.close()
        swarm.remove(stack, volumes=True)
        left = swarm_node.down(node)
        timings["node_left"] = left
        swarm.label_gateway_node(add=False)
        if initialised:
            swarm.docker("swarm", "leave", "--force", check=False)
        print(orjson.dumps({"swarm_node_test_timings": timings}).decode())
    assert not any(left.values()), left
