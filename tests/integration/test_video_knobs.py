"""The real bandwidth-allocator driving the real camera-capture and
object-detector through retained knobs: the budget in retained
`config/bandwidth-allocator` goes down, the camera's fps and frame size and
the detector's result rate and snapshots follow within 2 s; it goes back up,
they come back.

Frames are counted by a probe logged in as object-detector (only a detector
may read frames); detections, snapshots and events by an operator probe.
Latencies are measured from the acknowledged config publish to the first
frame or message that shows the effect.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import orjson

from tests.harness.probe import MakeProbe, Probe, Seen
from tests.harness.stage_process import StartStage
from tests.integration.allocator_helpers import set_config
from tests.integration.video_helpers import VIDEO, offer_frames, vtest_jpegs

ACCEPTANCE_S = 2.0
HIGH_BUDGET_KBPS = 100_000
WINDOW_S = 2.5


def _latest_levels(observer: Probe, root: str, analytic: str) -> list[dict[str, Any]]:
    seen = observer.wait_for(lambda m: m.topic == f"{root}/qos/{analytic}/levels", timeout_s=20)
    levels: list[dict[str, Any]] = seen[-1].json()["levels"]
    return levels


def _latest_knob(observer: Probe, root: str, analytic: str) -> dict[str, Any]:
    seen = observer.wait_for(lambda m: m.topic == f"{root}/qos/{analytic}" and bool(m.payload))
    level: dict[str, Any] = seen[-1].json()["level"]
    return level


def _frames_between(watcher: Probe, topic: str, start: float, end: float) -> list[Seen]:
    return watcher.received(lambda m: m.topic == topic and start <= m.at < end)


def _wait_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.time()))


def test_budget_drives_camera_and_detector_knobs(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=0)
    watcher = probe("object-detector")
    frame_topic = f"{root}/camera/yard/frame"
    watcher.subscribe(frame_topic, qos=0)
    operator = probe("operator")
    stage(
        "bandwidth-allocator",
        EDGEGW_DEBOUNCE_S="0.2",
        EDGEGW_BUDGET_KBPS=str(HIGH_BUDGET_KBPS),
    )
    stage(
        "camera-capture",
        EDGEGW_CAMERA="yard",
        EDGEGW_SOURCE=str(VIDEO),
        EDGEGW_FPS="10",
        EDGEGW_MAX_WIDTH="768",
        EDGEGW_MAX_HEIGHT="576",
    )
    stage("object-detector", EDGEGW_THREADS="1", EDGEGW_LEVELS_AFTER_FRAMES="10")
    stage("object-tracker")  # events, snapshots and detections at the knob's rate

    # Both analytics registered and given their best level by the allocator.
    camera_levels = _latest_levels(observer, root, "camera.yard")
    _latest_levels(observer, root, "detector.yard")
    best_camera = max(camera_levels, key=lambda level: level["utility"])
    assert _latest_knob(observer, root, "camera.yard")["name"] == best_camera["name"]
    assert _latest_knob(observer, root, "detector.yard")["params"]["snapshots"] is True
    # Snapshots flow at the high budget (so their absence later means something).
    observer.wait_for(lambda m: m.topic.startswith(f"{root}/snapshot/yard/"), timeout_s=15)
    start = time.time()
    _wait_until(start + WINDOW_S)
    high = _frames_between(watcher, frame_topic, start, start + WINDOW_S)
    fps_high = len(high) / WINDOW_S
    width_high = int(high[-1].properties["width"])

    # The tightest budget that pays the cheapest camera level and the
    # cheapest detector level (results only, the lowest rate) and nothing more.
    camera_min = min(level["cost_kbps"] for level in camera_levels)
    detector_levels = _latest_levels(observer, root, "detector.yard")
    detector_costs = sorted(level["cost_kbps"] for level in detector_levels)
    low_budget = camera_min + detector_costs[0] + 0.5 * (detector_costs[1] - detector_costs[0])
    lowered = time.time()
    set_config(operator, root, budget_kbps=round(low_budget, 3))
    knob = observer.wait_for(
        lambda m: m.topic == f"{root}/qos/detector.yard" and m.at >= lowered and bool(m.payload)
    )[-1].json()["level"]
    assert knob["params"]["snapshots"] is False
    slowest_rate = float(knob["params"]["result_rate"])
    small = watcher.wait_for(
        lambda m: (
            m.topic == frame_topic and m.at >= lowered and int(m.properties["width"]) < width_high
        )
    )[0]
    camera_latency = small.at - lowered
    _wait_until(lowered + ACCEPTANCE_S + WINDOW_S)
    settled = lowered + ACCEPTANCE_S
    low = _frames_between(watcher, frame_topic, settled, settled + WINDOW_S)
    fps_low = len(low) / WINDOW_S
    detections = observer.received(
        lambda m: m.topic == f"{root}/detections/yard" and settled <= m.at < settled + WINDOW_S
    )
    late_snapshots = observer.received(
        lambda m: m.topic.startswith(f"{root}/snapshot/yard/") and m.at >= settled
    )
    # The detector obeys once its detections are `1 / rate` apart: the last
    # message closer than that to its predecessor marks the old rate's end.
    after = observer.received(lambda m: m.topic == f"{root}/detections/yard" and m.at >= lowered)
    fast = [b.at for a, b in itertools.pairwise(after) if b.at - a.at < 0.7 / slowest_rate]
    detector_latency = (fast[-1] if fast else lowered) - lowered
    late_events = observer.received(lambda m: m.topic == f"{root}/event/yard" and m.at >= settled)
    late_new = [event for event in late_events if orjson.loads(event.payload)["type"] == "new"]
    print(
        f"high: {fps_high:.1f} fps {width_high} px; budget {low_budget:.1f} kbit/s -> "
        f"{fps_low:.1f} fps {small.properties['width']} px after {camera_latency:.2f} s; "
        f"detector knob {knob['name']} obeyed after {detector_latency:.2f} s, "
        f"{len(detections)} detections in {WINDOW_S} s, "
        f"{len(late_new)} new events, {len(late_snapshots)} snapshots after it settled"
    )
    assert camera_latency < ACCEPTANCE_S
    assert all(int(m.properties["width"]) < width_high for m in low)
    assert fps_low <= 0.5 * fps_high
    assert detector_latency < ACCEPTANCE_S
    # Below the camera's fps, so a detector ignoring its knob would send more.
    assert slowest_rate * 2 <= fps_low
    assert len(detections) <= slowest_rate * WINDOW_S + 1
    assert not late_snapshots
    assert all(not orjson.loads(event.payload)["has_snapshot"] for event in late_new)

    raised = time.time()
    set_config(operator, root, budget_kbps=HIGH_BUDGET_KBPS)
    big = watcher.wait_for(
        lambda m: (
            m.topic == frame_topic and m.at >= raised and int(m.properties["width"]) == width_high
        )
    )[0]
    knob = observer.wait_for(
        lambda m: m.topic == f"{root}/qos/detector.yard" and m.at >= raised and bool(m.payload)
    )[-1].json()["level"]
    _wait_until(raised + ACCEPTANCE_S + WINDOW_S)
    settled = raised + ACCEPTANCE_S
    fps_back = len(_frames_between(watcher, frame_topic, settled, settled + WINDOW_S)) / WINDOW_S
    detections = observer.received(
        lambda m: m.topic == f"{root}/detections/yard" and settled <= m.at < settled + WINDOW_S
    )
    print(
        f"raised: {width_high} px after {big.at - raised:.2f} s, {fps_back:.1f} fps; "
        f"detector knob {knob['name']}, {len(detections)} detections in {WINDOW_S} s"
    )
    assert big.at - raised < ACCEPTANCE_S
    assert fps_back >= 0.8 * fps_high
    assert knob["params"]["snapshots"] is True
    assert len(detections) >= 0.5 * fps_back * WINDOW_S


def _detector_knob(params: dict[str, object]) -> dict[str, object]:
    return {
        "source": "bandwidth-allocator",
        "analytic": "detector.gate",
        "level": {"name": "test", "params": params, "cost_kbps": 10.0, "utility": 0.5},
    }


def test_detector_knob_cleared_back_to_config_bad_params_dead_letter(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=0)
    stage("object-detector", EDGEGW_THREADS="1")
    stage("object-tracker")  # paces detections at the rate the detector's knob says
    online = f"{root}/status/object-detector"
    observer.wait_for(lambda m: m.topic == online and m.payload == b"online")
    tracker_online = f"{root}/status/object-tracker"
    observer.wait_for(lambda m: m.topic == tracker_online and m.payload == b"online")
    camera, allocator = probe("camera-capture"), probe("bandwidth-allocator")
    frames = vtest_jpegs(10, 320)
    frame_topic, knob_topic = f"{root}/camera/gate/frame", f"{root}/qos/detector.gate"
    detections_topic = f"{root}/detections/gate"

    def rate_while_offering(seconds: float) -> float:
        start = time.time()
        offer_frames(camera, frame_topic, frames, fps=8, seconds=seconds)
        seen = observer.received(lambda m: m.topic == detections_topic and m.at >= start + 1.0)
        return len(seen) / (seconds - 1.0)

    bad = _detector_knob({"result_rate": -1})
    assert allocator.publish(knob_topic, orjson.dumps(bad), retain=True) == 0
    observer.wait_for(lambda m: m.topic == f"{root}/deadletter/object-detector")
    full = rate_while_offering(3.0)
    knob = _detector_knob({"result_rate": 1.0, "snapshots": False})
    assert allocator.publish(knob_topic, orjson.dumps(knob), retain=True) == 0
    limited = rate_while_offering(4.0)
    assert allocator.publish(knob_topic, b"", retain=True) == 0  # cleared
    restored = rate_while_offering(3.0)
    print(f"detections/s: config {full:.1f}, knob 1/s {limited:.1f}, cleared {restored:.1f}")
    assert full >= 5.0
    assert limited <= 1.5
    assert restored >= 5.0


def test_the_operators_shares_rescore_the_detector_levels_it_publishes(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/qos/detector.porch/levels", qos=1)
    observer.subscribe(f"{root}/status/object-detector/config", qos=1)
    stage("object-detector", EDGEGW_THREADS="1", EDGEGW_LEVELS_AFTER_FRAMES="5")
    camera, operator = probe("camera-capture"), probe("operator")
    frames = vtest_jpegs(10, 320)
    frame_topic = f"{root}/camera/porch/frame"
    seq = offer_frames(camera, frame_topic, frames, fps=8, seconds=2.0)
    first = {lv["name"]: lv for lv in _latest_levels(observer, root, "detector.porch")}
    assert first["10hz-results"]["utility"] > 0.5  # live results count by default

    changed = time.time()
    pictures = {"level_utility": {"events": 0.2, "results": 0.0, "snapshots": 0.8}}
    operator.publish(f"{root}/config/object-detector", orjson.dumps(pictures), retain=True)
    observer.wait_for(lambda m: m.topic.endswith("/config") and m.at >= changed)
    offer_frames(camera, frame_topic, frames, fps=8, seconds=1.0, first_seq=seq)
    seen = observer.wait_for(lambda m: m.topic.endswith("/levels") and m.at >= changed)[-1]
    by_name = {lv["name"]: lv for lv in seen.json()["levels"]}
    print(
        f"10hz-results utility {first['10hz-results']['utility']} -> "
        f"{by_name['10hz-results']['utility']}, published {seen.at - changed:.2f} s after"
    )
    assert by_name["10hz-results"]["utility"] == 0.2
    assert by_name["10hz-snapshots"]["utility"] > by_name["10hz-results"]["utility"]
    operator.publish(f"{root}/config/object-detector", b"", retain=True)
