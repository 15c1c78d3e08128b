"""bandwidth-allocator against a real broker: knobs from offered levels, the
budget from retained config, analytics leaving, dry runs, dead letters, and
the real gas-replay stage obeying its knob.

Acceptance timings ("within 2 s") are measured from the moment the probe's
publish was acknowledged to the moment the observer saw the effect.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import orjson
import pytest

from schemas.alerts import UplinkUsage
from schemas.qos import PlanRequest
from services.cli.qos_command import plan
from tests.harness.broker import MosquittoBroker
from tests.harness.probe import MakeProbe, Probe
from tests.harness.stage_process import StartStage
from tests.integration.allocator_helpers import (
    AUDIO,
    CAMERA,
    CAMERA_LEVELS,
    knob_is,
    latency_of,
    latest_knobs,
    levels_payload,
    offer_both,
    set_config,
)

ACCEPTANCE_S = 2.0


def _start(stage: StartStage, probe: MakeProbe, root: str, **env: str) -> Probe:
    observer = probe("operator")
    observer.subscribe(f"{root}/#")
    stage("bandwidth-allocator", EDGEGW_DEBOUNCE_S="0.2", **env)
    observer.wait_for(
        lambda m: m.topic == f"{root}/status/bandwidth-allocator" and m.payload == b"online"
    )
    return observer


def test_knobs_follow_the_budget_from_retained_config(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = _start(stage, probe, root, EDGEGW_BUDGET_KBPS="2000")
    operator = probe("operator")
    offer_both(root, probe("camera-capture"), probe("audio-capture"))
    observer.wait_for(knob_is(root, CAMERA, "high"))
    observer.wait_for(knob_is(root, AUDIO, "high"))
    plan = observer.wait_for(lambda m: m.topic == f"{root}/allocator/plan" and m.json()["choices"])
    summary = plan[-1].json()
    assert summary["solver"] == "dp" and summary["feasible"]
    assert summary["cost_kbps"] == 928 and summary["total_utility"] == 2.0

    late = probe("operator")  # knobs and plan are retained for whoever comes later
    late.subscribe(f"{root}/qos/+")
    late.subscribe(f"{root}/allocator/plan")
    late.wait_for(lambda m: m.retained and m.topic.endswith("/allocator/plan"))
    assert latest_knobs(late, root) == {CAMERA: "high", AUDIO: "high", "uplink": "2000kbps"}

    # 300 kbit/s: camera low + audio high (1.3) beats camera mid + audio low (1.1).
    lowered = time.time()
    set_config(operator, root, budget_kbps=300)
    assert latency_of(observer, knob_is(root, CAMERA, "low"), lowered) < ACCEPTANCE_S
    # The bridge's rate limit follows on `qos/uplink`.
    assert latency_of(observer, knob_is(root, "uplink", "300kbps"), lowered) < ACCEPTANCE_S
    audio_knobs = observer.received(lambda m: m.topic == f"{root}/qos/{AUDIO}")
    assert len(audio_knobs) == 1  # unchanged choice: not republished

    raised = time.time()
    set_config(operator, root, budget_kbps=2000)
    assert latency_of(observer, knob_is(root, CAMERA, "high"), raised) < ACCEPTANCE_S
    final = observer.wait_for(
        lambda m: m.topic == f"{root}/allocator/plan" and m.json()["budget_kbps"] == 2000
    )
    assert final[-1].json()["total_utility"] == 2.0


def _usage(used_kbps: float, spooled: int) -> bytes:
    return UplinkUsage(
        source="cloud-bridge",
        budget_kbps=None,
        window_s=10,
        used_kbps=used_kbps,
        bytes_by_class={"alert": 1000},
        spool_entries=spooled,
        spool_bytes=spooled * 200,
        cloud_connected=True,
    ).to_bytes()


def test_a_measured_budget_follows_the_bridge_goodput(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = _start(
        stage, probe, root, EDGEGW_BUDGET_SOURCE="measured", EDGEGW_BUDGET_KBPS="1000"
    )
    offer_both(root, probe("camera-capture"), probe("audio-capture"))
    observer.wait_for(knob_is(root, CAMERA, "high"))  # no report yet: budget_kbps
    bridge = probe("cloud-bridge")
    backlog = time.time()
    bridge.publish(f"{root}/uplink/usage", _usage(300, spooled=40), retain=True)
    assert latency_of(observer, knob_is(root, CAMERA, "low"), backlog) < ACCEPTANCE_S
    keeping_up = time.time()  # no backlog: the budget probes up by 1.25 to 375
    bridge.publish(f"{root}/uplink/usage", _usage(290, spooled=0), retain=True)
    assert latency_of(observer, knob_is(root, CAMERA, "mid"), keeping_up) < ACCEPTANCE_S
    plan = observer.wait_for(
        lambda m: m.topic == f"{root}/allocator/plan" and m.json()["budget_kbps"] == 375
    )
    assert plan[-1].json()["cost_kbps"] == 328


def test_an_analytic_leaving_frees_its_budget_for_the_others(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = _start(stage, probe, root, EDGEGW_BUDGET_KBPS="900")
    camera, audio = probe("camera-capture"), probe("audio-capture")
    offer_both(root, camera, audio)
    # 900: camera mid + audio high (1.7) beats camera high + audio low (1.4).
    observer.wait_for(knob_is(root, CAMERA, "mid"))

    left = time.time()
    audio.publish(f"{root}/qos/{AUDIO}/levels", b"", retain=True)  # withdrawn
    assert latency_of(observer, knob_is(root, CAMERA, "high"), left) < ACCEPTANCE_S
    plan = observer.wait_for(
        lambda m: m.topic == f"{root}/allocator/plan" and m.at >= left and m.json()["choices"]
    )
    assert [c["analytic"] for c in plan[-1].json()["choices"]] == [CAMERA]

    offer_both(root, camera, audio)  # back
    observer.wait_for(lambda m: m.at >= left and knob_is(root, CAMERA, "mid")(m))

    gone = time.time()
    audio.publish(f"{root}/status/audio-capture", b"offline", retain=True)  # its stage stops
    assert latency_of(observer, knob_is(root, CAMERA, "high"), gone) < ACCEPTANCE_S

    back = time.time()
    audio.publish(f"{root}/status/audio-capture", b"online", retain=True)
    assert latency_of(observer, knob_is(root, CAMERA, "mid"), back) < ACCEPTANCE_S


def test_a_dry_run_answers_without_changing_the_knobs(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = _start(stage, probe, root, EDGEGW_BUDGET_KBPS="2000")
    offer_both(root, probe("camera-capture"), probe("audio-capture"))
    observer.wait_for(knob_is(root, CAMERA, "high"))
    observer.wait_for(knob_is(root, AUDIO, "high"))
    time.sleep(0.5)
    knobs_before = len(observer.received(lambda m: "/qos/" in m.topic))
    plans_before = len(observer.received(lambda m: m.topic.endswith("/allocator/plan")))

    operator = probe("operator")
    for request_id, budget, solver in (("r1", 100.0, None), ("r2", 100.0, "fptas")):
        request = PlanRequest(
            source="operator", request_id=request_id, budget_kbps=budget, solver=solver
        )
        operator.publish(f"{root}/allocator/request", request.to_bytes())
    answers = {
        m.topic.rsplit("/", 1)[-1]: m.json()
        for m in observer.wait_for(lambda m: "/allocator/response/" in m.topic, count=2)
    }
    for request_id, solver in (("r1", "dp"), ("r2", "fptas")):
        answer = answers[request_id]
        assert answer["dry_run"] and answer["budget_kbps"] == 100 and answer["solver"] == solver
        # 100: only camera low + audio low (66 kbit/s) fits.
        assert {c["analytic"]: c["level"] for c in answer["choices"]} == {
            CAMERA: "low",
            AUDIO: "low",
        }
    operator.publish(
        f"{root}/allocator/request",
        PlanRequest(source="operator", request_id="r3", budget_kbps=10, solver="magic").to_bytes(),
    )
    bad = observer.wait_for(lambda m: m.topic.endswith("/allocator/response/r3"))[0].json()
    assert not bad["feasible"] and "unknown solver" in bad["reason"]
    tight = PlanRequest(source="operator", request_id="r4", budget_kbps=10)
    operator.publish(f"{root}/allocator/request", tight.to_bytes())
    below = observer.wait_for(lambda m: m.topic.endswith("/allocator/response/r4"))[0].json()
    assert not below["feasible"] and "below" in below["reason"]

    time.sleep(0.5)
    assert len(observer.received(lambda m: "/qos/" in m.topic)) == knobs_before
    assert len(observer.received(lambda m: m.topic.endswith("/allocator/plan"))) == plans_before


def test_qos_plan_command_prints_the_dry_run_table(
    stage: StartStage,
    probe: MakeProbe,
    root: str,
    broker: MosquittoBroker,
    gateway_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    observer = _start(stage, probe, root, EDGEGW_BUDGET_KBPS="2000")
    offer_both(root, probe("camera-capture"), probe("audio-capture"))
    observer.wait_for(knob_is(root, CAMERA, "high"))
    settings = broker.door_settings("operator", gateway_id)
    assert asyncio.run(plan(settings, 300.0, "greedy_hull", 5.0)) == 0
    table = capsys.readouterr().out
    assert "greedy_hull" in table and "budget 300 kbit/s" in table
    rows = {line.split()[0]: line.split()[1] for line in table.splitlines()[2:4]}
    assert rows == {AUDIO: "high", CAMERA: "low"}
    assert asyncio.run(plan(settings, 300.0, "magic", 5.0)) == 1
    assert "unknown solver" in capsys.readouterr().out
    assert latest_knobs(observer, root) == {  # nothing changed
        CAMERA: "high",
        AUDIO: "high",
        "uplink": "2000kbps",
    }


def test_invalid_levels_are_dead_lettered_and_the_stage_keeps_going(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = _start(stage, probe, root, EDGEGW_BUDGET_KBPS="2000")
    camera = probe("camera-capture")
    bad_utility = orjson.loads(levels_payload("camera-capture", CAMERA, CAMERA_LEVELS))
    bad_utility["levels"][0]["utility"] = 1.5
    wrong_topic = levels_payload("camera-capture", "camera.other", CAMERA_LEVELS)
    for payload in (b"{not json", orjson.dumps(bad_utility), wrong_topic):
        camera.publish(f"{root}/qos/{CAMERA}/levels", payload, retain=True)
    letters = observer.wait_for(
        lambda m: m.topic == f"{root}/deadletter/bandwidth-allocator", count=3
    )
    reasons = [m.json()["reason"] for m in letters]
    assert "levels.0.utility" in reasons[1]
    assert "camera.other" in reasons[2]
    camera.publish(
        f"{root}/qos/{CAMERA}/levels",
        levels_payload("camera-capture", CAMERA, CAMERA_LEVELS),
        retain=True,
    )
    observer.wait_for(knob_is(root, CAMERA, "high"))


def _reading_times(observer: Probe, root: str, start: float, end: float) -> list[float]:
    return [
        m.at
        for m in observer.received(lambda m: m.topic == f"{root}/sensor/gas/kitchen")
        if start <= m.at < end
    ]


def _rate_change_after(times: list[float], since: float, slower: bool, fast: float) -> float:
    """Seconds from `since` to the first reading whose next one comes at the
    new pace (a gap above 1.5 x the fast period when slowing, below it when
    speeding up)."""
    for at, following in itertools.pairwise(times):
        gap_is_slow = following - at > 1.5 * fast
        if at >= since and gap_is_slow == slower:
            return at - since
    raise AssertionError(f"the pace never changed after {since}: {times}")


def test_gas_replay_reading_rate_follows_the_budget(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = _start(stage, probe, root, EDGEGW_BUDGET_KBPS="100")
    stage("gas-replay", EDGEGW_SENSORS="kitchen:co", EDGEGW_SEED="4", EDGEGW_SPEED="1")
    knob = observer.wait_for(lambda m: m.topic == f"{root}/qos/gas.kitchen")[-1].json()
    fast = float(knob["level"]["params"]["sample_period_s"])
    assert fast == 0.25  # plenty of budget: the finest level
    operator = probe("operator")
    time.sleep(2.0)

    lowered = time.time()
    set_config(operator, root, budget_kbps=1.0)
    slow_knob = observer.wait_for(
        lambda m: m.topic == f"{root}/qos/gas.kitchen" and m.at >= lowered
    )[-1].json()
    slow = float(slow_knob["level"]["params"]["sample_period_s"])
    assert slow >= 2.0
    time.sleep(ACCEPTANCE_S + 3 * slow)
    times = _reading_times(observer, root, lowered - 2.0, time.time())
    drop_s = _rate_change_after(times, lowered - fast, slower=True, fast=fast)
    print(f"gas-replay slowed down {drop_s:.3f} s after the budget was lowered")
    assert drop_s < ACCEPTANCE_S
    after = _reading_times(
        observer, root, lowered + ACCEPTANCE_S, lowered + ACCEPTANCE_S + 3 * slow
    )
    assert len(after) <= 4, (slow, after)
    assert len(_reading_times(observer, root, lowered - 2.0, lowered)) >= 2.0 / fast - 1

    raised = time.time()
    set_config(operator, root, budget_kbps=100)
    time.sleep(ACCEPTANCE_S + 1.0)
    times = _reading_times(observer, root, raised - slow, time.time())
    restore_s = _rate_change_after(times, raised, slower=False, fast=fast)
    print(f"gas-replay sped up {restore_s:.3f} s after the budget was raised")
    assert restore_s < ACCEPTANCE_S
    restored = _reading_times(observer, root, raised + ACCEPTANCE_S, raised + ACCEPTANCE_S + 1.0)
    assert len(restored) >= 1.0 / fast - 1, restored
