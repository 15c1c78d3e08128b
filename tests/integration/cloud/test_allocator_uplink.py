"""The REAL bandwidth-allocator drives the REAL cloud-bridge's upload rate.

The bridge starts with a spooled backlog of summaries, so it always has more
to send than the budget allows: what arrives at the cloud per second is its
rate limit, i.e. the budget the allocator publishes on `qos/uplink`. Rates
are counted at the cloud side (topic + payload bytes of what arrived) over a
window starting 2 s after the change, so they include the time to apply it.
The live messages each config change makes (the allocator's
`status/.../config`, forwarded live) go ahead of the backlog but take from
it only their own bytes.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.harness.stage_process import StartStage
from tests.integration.allocator_helpers import CAMERA, knob_is, offer_both, set_config
from tests.integration.cloud.cloud_helpers import cloud_kbps, fill_spool_with_summaries, on_topic
from tests.integration.cloud.cloud_probe import CloudProbe, CloudRig

ACCEPTANCE_S = 2.0
WINDOW_S = 3.0
HIGH_KBPS = 900.0  # camera mid + audio high (328 kbit/s of the test levels)
LOW_KBPS = 200.0
BACKLOG = 5000
PAD = 900  # ~1 KB per summary


def _cloud_kbps(watcher: CloudProbe, root: str, change: float) -> float:
    kbps = cloud_kbps(watcher, on_topic(f"{root}/"), change + ACCEPTANCE_S, WINDOW_S)
    print(f"cloud receives {kbps:.0f} kbit/s from {ACCEPTANCE_S} s after the change")
    return kbps


def test_the_budget_sets_the_bridge_upload_rate_and_a_leaving_analytic_frees_budget(
    stage: StartStage, rig: CloudRig, root: str, tmp_path: Path
) -> None:
    spool_path = tmp_path / "backlog" / "spool.db"
    fill_spool_with_summaries(spool_path, root, BACKLOG, pad=PAD)
    observer = rig.at_gateway("qos/#")
    operator = rig.probe("operator")
    audio = rig.probe("audio-capture")
    stage("bandwidth-allocator", EDGEGW_DEBOUNCE_S="0.2", EDGEGW_BUDGET_KBPS=str(HIGH_KBPS))
    offer_both(root, rig.probe("camera-capture"), audio)
    observer.wait_for(knob_is(root, "uplink", f"{HIGH_KBPS:g}kbps"))
    watcher = rig.at_cloud("#")
    # Its own start-up budget equals the knob's, so the first seconds do not
    # drain the backlog at the fixture's default 100 Mbit/s.
    rig.bridge(EDGEGW_SPOOL_PATH=str(spool_path), EDGEGW_BUDGET_KBPS=str(HIGH_KBPS))
    watcher.wait_for(on_topic(f"{root}/summary/"), count=20, timeout_s=20)
    high = _cloud_kbps(watcher, root, time.time() - ACCEPTANCE_S)
    assert 0.6 * HIGH_KBPS < high < 1.5 * HIGH_KBPS

    lowered = time.time()
    set_config(operator, root, budget_kbps=LOW_KBPS)
    observer.wait_for(lambda m: m.at >= lowered and knob_is(root, "uplink", "200kbps")(m))
    low = _cloud_kbps(watcher, root, lowered)
    assert low < 1.3 * LOW_KBPS < 0.6 * high

    raised = time.time()
    set_config(operator, root, budget_kbps=HIGH_KBPS)
    restored = _cloud_kbps(watcher, root, raised)
    assert 0.6 * HIGH_KBPS < restored < 1.5 * HIGH_KBPS

    # At 900 kbit/s the camera runs mid (200) beside audio high (128): high
    # (800) does not fit with it. Audio leaving frees its 128 for the camera.
    observer.wait_for(knob_is(root, CAMERA, "mid"))
    left = time.time()
    audio.publish(f"{root}/qos/audio.mic/levels", b"", retain=True)
    seen = observer.wait_for(lambda m: m.at >= left and knob_is(root, CAMERA, "high")(m))
    latency = seen[0].at - left
    print(f"camera knob high {latency:.3f} s after audio left")
    assert latency < ACCEPTANCE_S
