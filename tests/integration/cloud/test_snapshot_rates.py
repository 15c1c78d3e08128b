"""The REAL allocator sets each camera's upload rate in the REAL cloud-bridge.

Two detector analytics offer levels (results only: cheap; with snapshots:
dear). A probe with object-tracker's account publishes far more snapshots
than either level pays for, so what reaches the cloud per camera is the
bridge's per-analytic rate limit, i.e. the cost of the level the allocator
chose. (A real detector would also stop taking snapshots on a results-only
knob; the flood shows the bridge holds the rate by itself.)

Lowering the budget moves `front` to results only: its upload drops within
2 s while `yard` keeps its rate. Raising it restores `front`. Rates are
counted at the cloud (topic + payload bytes) over a window starting 2 s
after the change, so they include the time to apply it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from tests.harness.probe import Probe
from tests.harness.stage_process import StartStage
from tests.integration.allocator_helpers import knob_is, levels_payload, set_config
from tests.integration.cloud.cloud_helpers import cloud_kbps, on_topic
from tests.integration.cloud.cloud_probe import CloudProbe, CloudRig

ACCEPTANCE_S = 2.0
WINDOW_S = 4.0
SNAPSHOT_BYTES = 12_000
OFFERED_PER_S = 12  # per camera: ~1150 kbit/s, far above any level
# name, cost kbit/s, utility
FRONT_LEVELS = [("results", 8.0, 0.5), ("snapshots", 240.0, 1.0)]
YARD_LEVELS = [("results", 8.0, 0.4), ("snapshots", 120.0, 1.0)]
HIGH_KBPS = 600.0  # both with snapshots (360)
LOW_KBPS = 180.0  # yard's snapshots + front's results (128) beat front's snapshots + yard's results


@contextmanager
def snapshot_flood(detector: Probe, root: str, cameras: list[str]) -> Iterator[None]:
    stop = threading.Event()

    def publish() -> None:
        serial = 0
        while not stop.is_set():
            for camera in cameras:
                jpeg = b"\xff\xd8" + serial.to_bytes(4, "big") + b"\xff" * (SNAPSHOT_BYTES - 6)
                detector.publish(f"{root}/snapshot/{camera}/person", jpeg, qos=0, retain=True)
            serial += 1
            stop.wait(1 / OFFERED_PER_S)

    worker = threading.Thread(target=publish, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(5)


def camera_kbps(watcher: CloudProbe, root: str, change: float) -> dict[str, float]:
    rates = {
        camera: cloud_kbps(
            watcher, on_topic(f"{root}/snapshot/{camera}/"), change + ACCEPTANCE_S, WINDOW_S
        )
        for camera in ("front", "yard")
    }
    print(f"cloud receives {rates} kbit/s from {ACCEPTANCE_S} s after the change")
    return rates


def test_each_camera_uploads_at_its_allocated_rate_and_follows_the_budget(
    stage: StartStage, rig: CloudRig, root: str
) -> None:
    observer = rig.at_gateway("qos/#", "uplink/usage")
    operator = rig.probe("operator")
    detector = rig.probe("object-detector")
    stage("bandwidth-allocator", EDGEGW_DEBOUNCE_S="0.2", EDGEGW_BUDGET_KBPS=str(HIGH_KBPS))
    for camera, levels in (("front", FRONT_LEVELS), ("yard", YARD_LEVELS)):
        analytic = f"detector.{camera}"
        payload = levels_payload("object-detector", analytic, levels)
        detector.publish(f"{root}/qos/{analytic}/levels", payload, retain=True)
    observer.wait_for(knob_is(root, "detector.front", "snapshots"))
    observer.wait_for(knob_is(root, "detector.yard", "snapshots"))
    watcher = rig.at_cloud("snapshot/#")
    rig.bridge(EDGEGW_BUDGET_KBPS=str(HIGH_KBPS))
    with snapshot_flood(rig.probe("object-tracker"), root, ["front", "yard"]):
        watcher.wait_for(lambda m: m.topic.endswith("/front/person"), count=3, timeout_s=20)
        high = camera_kbps(watcher, root, time.time() - ACCEPTANCE_S)
        assert 0.6 * 240 < high["front"] < 1.3 * 240
        assert 0.6 * 120 < high["yard"] < 1.3 * 120

        lowered = time.time()
        set_config(operator, root, budget_kbps=LOW_KBPS)
        knob = observer.wait_for(
            lambda m: m.at >= lowered and knob_is(root, "detector.front", "results")(m)
        )
        print(f"front's knob says results only {knob[0].at - lowered:.3f} s after the change")
        low = camera_kbps(watcher, root, lowered)
        # One 12 KB snapshot in the window is 24 kbit/s; 8 kbit/s pays for ~1 per 12 s.
        assert low["front"] < 0.15 * high["front"]
        assert 0.6 * 120 < low["yard"] < 1.3 * 120

        raised = time.time()
        set_config(operator, root, budget_kbps=HIGH_KBPS)
        restored = camera_kbps(watcher, root, raised)
        assert 0.6 * 240 < restored["front"] < 1.3 * 240

    usage = observer.wait_for(
        lambda m: (
            m.topic == f"{root}/uplink/usage"
            and bool(orjson.loads(m.payload).get("analytic_rates_kbps"))
        )
    )
    reported = orjson.loads(usage[-1].payload)["analytic_rates_kbps"]
    assert reported["detector.front"] > 0 and reported["detector.yard"] > 0


def test_a_snapshot_that_is_not_a_jpeg_is_dead_lettered_and_the_next_goes_up(
    rig: CloudRig, root: str
) -> None:
    observer = rig.at_gateway("deadletter/cloud-bridge")
    watcher = rig.at_cloud("snapshot/#")
    rig.bridge()
    detector = rig.probe("object-tracker")  # the publisher of snapshots
    topic = f"{root}/snapshot/gate/person"
    wait_online = rig.at_gateway("status/cloud-bridge")
    wait_online.wait_for(lambda m: m.payload == b"online", timeout_s=20)
    assert detector.publish(topic, b"GIF89a not a picture", retain=True) == 0
    letter = observer.wait_for(lambda m: m.topic.endswith("/deadletter/cloud-bridge"))[0].json()
    assert "not a JPEG" in letter["reason"]
    assert detector.publish(topic, b"\xff\xd8" + b"\x00" * 100, retain=True) == 0
    arrived = watcher.wait_for(lambda m: m.topic == topic, timeout_s=10)
    assert all(m.payload.startswith(b"\xff\xd8") for m in arrived)
