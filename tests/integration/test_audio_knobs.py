"""The audio analytic under the REAL bandwidth-allocator: audio-classifier
offers the levels of `audio.<mic>`, the allocator picks one from the budget in
retained `config/bandwidth-allocator`, and the classifier's result rate (class
messages per second on `audio/<mic>/classes`) follows within 2 s.

Timings are measured from the acknowledged config publish to the moment the
observer saw the knob; rates are counted over a window starting 2 s after the
change (so they include the time the stage needed to apply it).
"""

from __future__ import annotations

import time

from services.audio_classifier.levels import load_profile
from tests.harness.probe import MakeProbe, Probe
from tests.harness.stage_process import StartStage
from tests.integration.allocator_helpers import knob_is, latency_of, set_config
from tests.integration.audio_helpers import AUDIO_DIR, require

ACCEPTANCE_S = 2.0
MIC = "hall"
ANALYTIC = f"audio.{MIC}"
RATE_WINDOW_S = 6.0
# Patches are 0.48 s apart: stride 1 gives ~2.08 results/s, stride 8 ~0.26/s.
FULL_RATE_MIN = 1.5
LOW_RATE_MAX = 0.6


def _rate_after(observer: Probe, root: str, change: float) -> float:
    start = change + ACCEPTANCE_S
    end = start + RATE_WINDOW_S
    time.sleep(max(0.0, end - time.time()))
    topic = f"{root}/audio/{MIC}/classes"
    seen = observer.received(lambda m: m.topic == topic and start <= m.at < end)
    rate = len(seen) / RATE_WINDOW_S
    print(f"{rate:.2f} results/s from {ACCEPTANCE_S} s after the change")
    return rate


def test_the_budget_sets_the_classification_rate(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    levels = {lv.patch_stride: lv for lv in load_profile().levels}
    assert set(levels) >= {1, 8}
    observer = probe("operator")
    observer.subscribe(f"{root}/qos/#")
    observer.subscribe(f"{root}/audio/{MIC}/classes")
    operator = probe("operator")
    stage("bandwidth-allocator", EDGEGW_DEBOUNCE_S="0.2", EDGEGW_BUDGET_KBPS="1000")
    stage("audio-classifier", EDGEGW_THREADS="1")
    stage(
        "audio-capture",
        EDGEGW_MIC=MIC,
        EDGEGW_AUDIO_FILES=str(require(AUDIO_DIR / "alarm-clock-elapsed.wav")),
        EDGEGW_LOOP="true",
    )
    offered = observer.wait_for(lambda m: m.topic == f"{root}/qos/{ANALYTIC}/levels", timeout_s=30)
    costs = {lv["params"]["patch_stride"]: lv["cost_kbps"] for lv in offered[0].json()["levels"]}
    assert costs[8] < costs[1]
    observer.wait_for(knob_is(root, ANALYTIC, "every-1-patch"))
    assert _rate_after(observer, root, time.time() - ACCEPTANCE_S) >= FULL_RATE_MIN

    # A budget only the cheapest level fits in.
    lowered = time.time()
    set_config(operator, root, budget_kbps=costs[8] * 1.05)
    assert latency_of(observer, knob_is(root, ANALYTIC, "every-8-patch"), lowered) < ACCEPTANCE_S
    assert _rate_after(observer, root, lowered) <= LOW_RATE_MAX

    raised = time.time()
    set_config(operator, root, budget_kbps=1000)
    assert latency_of(observer, knob_is(root, ANALYTIC, "every-1-patch"), raised) < ACCEPTANCE_S
    assert _rate_after(observer, root, raised) >= FULL_RATE_MIN

    # A cleared knob (payload None) is back to the config: every patch.
    set_config(operator, root, budget_kbps=costs[8] * 1.05)
    observer.wait_for(lambda m: m.at >= raised and knob_is(root, ANALYTIC, "every-8-patch")(m))
    allocator = probe("bandwidth-allocator")
    cleared = time.time()
    allocator.publish(f"{root}/qos/{ANALYTIC}", b"", retain=True)
    assert _rate_after(observer, root, cleared) >= FULL_RATE_MIN
