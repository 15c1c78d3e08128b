"""The deployer tells the allocator where each analytic runs, against a real
Docker engine, registry and Mosquitto, with the allocator (and, for the
stage image, audio-capture) as processes: an analytic in the cloud costs its
raw upload, on the gateway its results, and a removed one nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from schemas.deploy import Hosting
from schemas.qos import QosLevel, QosLevels, QosPlan
from tests.harness.probe import MakeProbe, Probe, Seen
from tests.harness.stage_process import StartStage
from tests.integration.allocator_helpers import CAMERA, CAMERA_LEVELS, levels_payload, set_config
from tests.integration.audio_helpers import AUDIO_DIR, require
from tests.integration.deployer.conftest import StartDeployer
from tests.integration.deployer.environment import drop_local
from tests.integration.deployer.helpers import (
    OUTPUT_TOPIC,
    deploy,
    lifecycle,
    states,
    wait_online,
    wait_state,
)
from tools.analytic_images import STAGE_REPOSITORY, build_and_push_stage
from tools.local_registry import LocalRegistry

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

Choice = tuple[str, float, str]  # level, cost_kbps, hosted


def _choices(message: Seen) -> dict[str, Choice]:
    plan = QosPlan.from_bytes(message.payload)
    return {c.analytic: (c.level, c.cost_kbps, c.hosted) for c in plan.choices}


def _next_plan(observer: Probe, root: str, after: Seen, timeout_s: float = 10) -> dict[str, Choice]:
    """The choices of the first plan received after the message `after`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        messages = observer.received()
        later = messages[next(i for i, m in enumerate(messages) if m is after) + 1 :]
        plans = [m for m in later if m.topic == f"{root}/allocator/plan" and m.payload]
        if plans:
            return _choices(plans[0])
        time.sleep(0.05)
    raise AssertionError(f"no plan within {timeout_s} s after {after.topic}")


def _plan_where(root: str, holds: Callable[[dict[str, Choice]], bool]) -> Callable[[Seen], bool]:
    def match(message: Seen) -> bool:
        if message.topic != f"{root}/allocator/plan" or not message.payload:
            return False
        return holds(_choices(message))

    return match


def _hosting_is(root: str, analytic: str, hosted: str | None) -> Callable[[Seen], bool]:
    def match(message: Seen) -> bool:
        if message.topic != f"{root}/deploy/hosting/{analytic}":
            return False
        if hosted is None:
            return not message.payload
        return bool(message.payload) and Hosting.from_bytes(message.payload).hosted == hosted

    return match


def _start_allocator(stage: StartStage, observer: Probe, root: str, budget: str) -> Any:
    allocator = stage("bandwidth-allocator", EDGEGW_BUDGET_KBPS=budget, EDGEGW_DEBOUNCE_S="0.1")
    observer.wait_for(
        lambda m: m.topic == f"{root}/status/bandwidth-allocator" and m.payload == b"online",
        timeout_s=20,
    )
    return allocator


# The deployed analytic as its cloud copy offers it (through the cloud bridge):
# at each level its results, and the raw input the cloud copy needs.
COUNTER = "counter"
COUNTER_LEVELS = QosLevels(
    source="cloud-bridge",
    analytic=COUNTER,
    levels=[
        QosLevel(name="low", cost_kbps=10, raw_cost_kbps=300, utility=0.5),
        QosLevel(name="high", cost_kbps=40, raw_cost_kbps=1200, utility=1.0),
    ],
)


def test_a_deploy_moves_the_analytics_cost_from_raw_upload_to_results_within_one_replan(
    deployer: StartDeployer,
    stage: StartStage,
    probe: MakeProbe,
    root: str,
    engine: Any,
    registry: LocalRegistry,
) -> None:
    drop_local(engine, registry, "hello")
    observer = probe("operator")
    for pattern in ("deploy/#", "allocator/plan", "status/bandwidth-allocator"):
        observer.subscribe(f"{root}/{pattern}")
    _start_allocator(stage, observer, root, budget="1000")
    probe("cloud-bridge").publish(
        f"{root}/qos/{COUNTER}/levels", COUNTER_LEVELS.to_bytes(), retain=True
    )
    probe("camera-capture").publish(
        f"{root}/qos/{CAMERA}/levels",
        levels_payload("camera-capture", CAMERA, CAMERA_LEVELS),
        retain=True,
    )
    deployer()
    wait_online(observer, root)

    registry.stop()  # the image cannot come yet: the analytic runs in the cloud meanwhile
    try:
        deploy(
            observer,
            root,
            analytic=COUNTER,
            image="edgegw-analytics/hello:1",
            upload_saving_kbps=260,
            topics=OUTPUT_TOPIC,
        )
        wait_state(observer, root, COUNTER, "downloading")
        # In the cloud its raw frames take 300 of the 1000 kbit/s even at its low
        # level: the camera drops to mid (300 + 800 would not fit).
        observer.wait_for(
            _plan_where(
                root,
                lambda c: (
                    c.get(COUNTER) == ("low", 300, "cloud") and c.get(CAMERA, ("",))[0] == "mid"
                ),
            ),
            timeout_s=20,
        )
    finally:
        registry.start()

    wait_state(observer, root, COUNTER, "running", timeout_s=60)
    moved = observer.wait_for(_hosting_is(root, COUNTER, "gateway"), timeout_s=10)[0]
    first = _next_plan(observer, root, after=moved)
    # The very next plan: results only (40 at its high level), and the camera gets high.
    assert first == {COUNTER: ("high", 40, "gateway"), CAMERA: ("high", 800, "gateway")}, first

    # Removed: its hosting and its offered levels are cleared, its budget is free.
    lifecycle(observer, root, "remove", COUNTER)
    wait_state(observer, root, COUNTER, "removed")
    observer.wait_for(_hosting_is(root, COUNTER, None), timeout_s=10)
    observer.wait_for(_plan_where(root, lambda c: COUNTER not in c and CAMERA in c), timeout_s=10)
    late = probe("operator")
    late.subscribe(f"{root}/deploy/hosting/#")
    late.subscribe(f"{root}/qos/+/levels")
    late.wait_for(lambda m: m.topic == f"{root}/qos/{CAMERA}/levels")
    assert not late.received(lambda m: COUNTER in m.topic and bool(m.payload))


@pytest.fixture(scope="session")
def stage_image(engine: Any, registry: LocalRegistry) -> Iterator[str]:
    """The project's stage image, built from this tree, pushed to the
    session's registry; the engine keeps it under its own name only."""
    reference = build_and_push_stage(registry.address, engine)
    engine.images.remove(reference, noprune=True)
    yield f"{STAGE_REPOSITORY}:1"
    for image in engine.images.list(name=f"{registry.address}/{STAGE_REPOSITORY}"):
        for tag in image.tags:
            if tag.startswith(f"{registry.address}/"):  # what the deploy pulled
                engine.images.remove(tag, noprune=True)


MIC = "hosting-m2"
AUDIO = f"audio.{MIC}"


@pytest.mark.timeout(1800)  # a first build of the stage image installs every wheel
def test_the_audio_classifier_deployed_on_a_running_gateway_joins_the_allocator_and_leaves(
    deployer: StartDeployer,
    stage: StartStage,
    probe: MakeProbe,
    root: str,
    engine: Any,
    stage_image: str,
) -> None:
    observer = probe("operator")
    for pattern in ("deploy/#", "allocator/plan", "qos/+/levels", "status/+"):
        observer.subscribe(f"{root}/{pattern}")
    allocator = _start_allocator(stage, observer, root, budget="2000")
    capture = stage(
        "audio-capture",
        EDGEGW_MIC=MIC,
        EDGEGW_AUDIO_FILES=str(require(AUDIO_DIR / "Noise.wav")),
        EDGEGW_LOOP="true",
    )
    probe("camera-capture").publish(
        f"{root}/qos/{CAMERA}/levels",
        levels_payload("camera-capture", CAMERA, CAMERA_LEVELS),
        retain=True,
    )
    observer.wait_for(_plan_where(root, lambda c: set(c) == {CAMERA}), timeout_s=20)
    deployer()
    wait_online(observer, root)

    deploy(
        observer,
        root,
        analytic=AUDIO,
        image=stage_image,
        stage="audio-classifier",
        upload_saving_kbps=256,
        limits={"cpus": 1.0, "memory_mb": 512, "pids": 128},
        restart="no",
    )
    running = wait_state(observer, root, AUDIO, "running", timeout_s=120)
    container = engine.containers.get(running.container_id)
    assert container.attrs["Config"]["Cmd"] == ["audio-classifier"]
    # Its own levels, from the container, with its own identity; then the allocator plans it.
    try:
        offered = observer.wait_for(
            lambda m: m.topic == f"{root}/qos/{AUDIO}/levels" and bool(m.payload), timeout_s=60
        )
    except AssertionError:
        seen = [(s.state, s.reason, s.exit) for s in states(observer, root, AUDIO)]
        raise AssertionError(f"no levels from {AUDIO}; its states: {seen}") from None
    levels = QosLevels.from_bytes(offered[-1].payload)
    assert levels.source == "audio-classifier" and len(levels.levels) > 1
    observer.wait_for(_plan_where(root, lambda c: c.get(AUDIO, ("", 0, ""))[2] == "gateway"))

    # A budget the camera's high level fits only without the mic's cheapest level.
    cheapest = min(level.cost_kbps for level in levels.levels)
    set_config(probe("operator"), root, budget_kbps=800 + cheapest / 2)
    observer.wait_for(
        _plan_where(root, lambda c: AUDIO in c and c[CAMERA][0] == "mid"), timeout_s=10
    )

    lifecycle(observer, root, "remove", AUDIO)
    wait_state(observer, root, AUDIO, "removed", timeout_s=30)
    observer.wait_for(
        _plan_where(root, lambda c: AUDIO not in c and c[CAMERA][0] == "high"), timeout_s=10
    )
    # Nothing else restarted: the allocator and the capture ran throughout.
    assert allocator.poll() is None and capture.poll() is None
    stopped = observer.received(
        lambda m: (
            m.topic in (f"{root}/status/bandwidth-allocator", f"{root}/status/audio-capture")
            and m.payload == b"offline"
        )
    )
    assert stopped == []
