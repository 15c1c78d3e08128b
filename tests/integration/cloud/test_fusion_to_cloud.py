"""End to end: config set in the cloud reaches alert-forwarder; gas, sound and
person events in one place become one incident alert, delivered to the cloud."""

from __future__ import annotations

import time
import uuid

import orjson

from schemas.gas import GasEvent
from schemas.qos import QosKnob, QosLevel
from schemas.video import Box, ObjectEvent
from tests.harness.events import smoke_alarm
from tests.harness.stage_process import StartStage
from tests.integration.cloud.cloud_probe import CloudRig

PLACES = {"kitchen-gas": "kitchen", "kitchen-mic": "kitchen", "kitchen-cam": "kitchen"}


def test_gas_sound_and_person_in_one_place_make_one_incident_at_the_cloud(
    stage: StartStage, rig: CloudRig, root: str
) -> None:
    watcher = rig.at_cloud("alert/#", "status/alert-forwarder/config")
    local = rig.at_gateway("uplink/usage")
    rig.bridge()
    forwarder = stage("alert-forwarder")
    config = {"fusion": {"places": PLACES, "window_s": 30, "linger_s": 1}}
    watcher.publish(f"{root}/config/alert-forwarder", orjson.dumps(config), retain=True)
    state = watcher.wait_for(lambda m: m.topic.endswith("/config"), timeout_s=15)[-1]
    assert state.json()["status"] == "accepted"  # the stage's answer, back at the cloud
    assert state.json()["applied"]["fusion"]["places"] == PLACES

    now = time.time()
    gas = GasEvent(
        source="gas-average", type="new", event_id=f"g-{uuid.uuid4().hex[:6]}",
        sensor="kitchen-gas", gas="smoke", label="smoke_high", severity="warning",
        value=320, peak=320, threshold=200, start_ts=now - 2,
    )  # fmt: skip
    sound = smoke_alarm(f"s-{uuid.uuid4().hex[:6]}", "kitchen-mic", now - 1)
    person = ObjectEvent(
        source="object-detector", type="new", event_id=f"o-{uuid.uuid4().hex[:6]}",
        camera="kitchen-cam", label="person", score=0.8, top_score=0.8,
        box=Box(x1=10, y1=10, x2=100, y2=200), frame_width=320, frame_height=240, start_ts=now,
    )  # fmt: skip
    assert rig.probe("gas-average").publish(f"{root}/event/kitchen-gas", gas.to_bytes()) == 0
    assert rig.probe("audio-classifier").publish(f"{root}/event/kitchen-mic", sound.to_bytes()) == 0
    assert rig.probe("object-tracker").publish(f"{root}/event/kitchen-cam", person.to_bytes()) == 0

    incident = watcher.wait_for(
        lambda m: m.topic == f"{root}/alert/kitchen" and len(m.json()["parts"]) == 3,
        timeout_s=15,
    )[-1].json()
    assert incident["label"] == "incident" and incident["place"] == "kitchen"
    assert {p["event_id"] for p in incident["parts"]} == {
        gas.event_id,
        sound.event_id,
        person.event_id,
    }
    assert incident["severity"] == "critical"
    assert "smoke_alarm_person" in incident["escalations"]
    incidents = [m.json() for m in watcher.received(lambda m: m.topic == f"{root}/alert/kitchen")]
    assert len({i["alert_id"] for i in incidents}) == 1, "one incident, not several"
    assert incidents[0]["type"] == "new"
    # `<alert_id>.<type>.<digest of the triggering event>`: distinct per message.
    assert all(i["id"].startswith(f"{i['alert_id']}.{i['type']}.") for i in incidents)
    assert len({i["id"] for i in incidents}) == len({i["sequence"] for i in incidents})
    # Each part is also alerted on its own source.
    single = {f"{root}/alert/{source}" for source in PLACES}
    watcher.wait_for(lambda m: m.topic in single, count=3, timeout_s=5)
    usage = local.wait_for(lambda m: m.json()["bytes_by_class"].get("alert", 0) > 0)[-1].json()
    assert usage["messages_by_class"]["alert"] >= 4
    assert (usage["budget_kbps"], usage["budget_source"]) == (100_000, "config")

    # The allocator's knob takes over from the bridge's own budget.
    knob = QosKnob(
        source="bandwidth-allocator",
        analytic="uplink",
        level=QosLevel(name="narrow", params={"kbps": 96}, cost_kbps=96, utility=1),
    )
    allocator = rig.probe("bandwidth-allocator")
    assert allocator.publish(f"{root}/qos/uplink", knob.to_bytes(), retain=True) == 0
    local.wait_for(
        lambda m: m.json()["budget_kbps"] == 96 and m.json()["budget_source"] == "allocator",
        timeout_s=10,
    )
    assert forwarder.poll() is None
