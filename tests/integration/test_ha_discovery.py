"""ha-discovery against a real broker and real stages: Home Assistant's
commands change the allocator's config and knob within 2 s, HA's birth message
brings the discovery again, and a withdrawn analytic or a gone stage has its
device removed with the empty payload.

The probe named `ha` plays Home Assistant: it connects as the operator, as
Home Assistant does (README, "Home Assistant").
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from tests.harness.probe import MakeProbe, Probe, Seen
from tests.harness.stage_process import StartStage
from tests.integration.allocator_helpers import AUDIO, AUDIO_LEVELS, levels_payload

ACCEPTANCE_S = 2.0
DISCOVERY = "homeassistant/device/+/config"


def _device_topic(gateway_id: str, *parts: str) -> str:
    return "homeassistant/device/" + "_".join(["edgegw", gateway_id, *parts]) + "/config"


def _start_discovery(stage: StartStage, probe: MakeProbe, root: str) -> Probe:
    ha = probe("operator")
    ha.subscribe(DISCOVERY)
    ha.subscribe(f"{root}/#")
    stage("ha-discovery", EDGEGW_SETTLE_S="0.5", EDGEGW_DEBOUNCE_S="0.1")
    ha.wait_for(lambda m: m.topic == f"{root}/status/ha-discovery" and m.payload == b"online")
    return ha


def _since(ha: Probe, where: Callable[[Seen], bool], since: float, timeout_s: float = 10.0) -> Seen:
    return ha.wait_for(lambda m: m.at >= since and where(m), timeout_s=timeout_s)[0]


def test_number_and_select_commands_change_config_and_knob_within_2s(
    stage: StartStage, probe: MakeProbe, root: str, gateway_id: str
) -> None:
    ha = _start_discovery(stage, probe, root)
    stage("bandwidth-allocator", EDGEGW_DEBOUNCE_S="0.1")
    audio = probe("audio-classifier")
    audio.publish(
        f"{root}/qos/{AUDIO}/levels",
        levels_payload("audio-classifier", AUDIO, AUDIO_LEVELS),
        retain=True,
    )
    gateway = ha.wait_for(lambda m: m.topic == _device_topic(gateway_id) and bool(m.payload))
    budget = orjson.loads(gateway[-1].payload)["cmps"]["budget"]
    mic = ha.wait_for(
        lambda m: m.topic == _device_topic(gateway_id, "mic", "mic") and bool(m.payload)
    )
    select = orjson.loads(mic[-1].payload)["cmps"]["level_audio"]
    assert select["ops"] == ["auto", "low", "high"]
    ha.wait_for(lambda m: m.topic == f"{root}/qos/{AUDIO}" and bool(m.payload))
    ha.wait_for(
        lambda m: m.topic == f"{root}/status/bandwidth-allocator" and m.payload == b"online"
    )

    # The number: Home Assistant publishes the value on its command topic.
    sent = time.time()
    assert ha.publish(budget["cmd_t"], "500") == 0
    state = _since(
        ha,
        lambda m: m.topic == budget["stat_t"] and m.json()["applied"]["budget_kbps"] == 500,
        sent,
    )
    knob = _since(
        ha,
        lambda m: m.topic == f"{root}/qos/uplink" and m.json()["level"]["params"]["kbps"] == 500,
        sent,
    )
    assert state.json()["status"] == "accepted"
    assert max(state.at, knob.at) - sent < ACCEPTANCE_S
    # At 500 kbit/s the allocator gives the mic its best level; pin it low.
    ha.wait_for(lambda m: m.topic == f"{root}/qos/{AUDIO}" and m.json()["level"]["name"] == "high")
    sent = time.time()
    assert ha.publish(select["cmd_t"], "low") == 0
    knob = _since(
        ha, lambda m: m.topic == f"{root}/qos/{AUDIO}" and m.json()["level"]["name"] == "low", sent
    )
    assert knob.at - sent < ACCEPTANCE_S
    config = _since(ha, lambda m: m.topic == f"{root}/config/bandwidth-allocator", sent)
    assert orjson.loads(config.payload) == {"budget_kbps": 500, "pinned_levels": {AUDIO: "low"}}


def test_home_assistants_birth_message_brings_discovery_again(
    stage: StartStage, probe: MakeProbe, root: str, gateway_id: str
) -> None:
    ha = _start_discovery(stage, probe, root)
    first = ha.wait_for(lambda m: m.topic == _device_topic(gateway_id) and bool(m.payload))
    time.sleep(1.0)  # nothing changes: nothing is published again
    assert len(ha.received(lambda m: m.topic == _device_topic(gateway_id))) == len(first)
    sent = time.time()
    ha.publish("homeassistant/status", "online")
    again = _since(ha, lambda m: m.topic == _device_topic(gateway_id) and bool(m.payload), sent)
    assert again.payload == first[-1].payload
    assert again.at - sent < ACCEPTANCE_S


def test_a_withdrawn_analytic_and_a_gone_stage_remove_their_devices(
    stage: StartStage, probe: MakeProbe, root: str, gateway_id: str
) -> None:
    ha = _start_discovery(stage, probe, root)
    audio = probe("audio-classifier")
    audio.publish(f"{root}/status/audio-classifier", "online", retain=True)
    for mic in ("hall", "porch"):
        audio.publish(
            f"{root}/qos/audio.{mic}/levels",
            levels_payload("audio-classifier", f"audio.{mic}", AUDIO_LEVELS),
            retain=True,
        )
    devices = {_device_topic(gateway_id, "mic", mic) for mic in ("hall", "porch")}
    ha.wait_for(lambda m: m.topic in devices and bool(m.payload), count=2)

    sent = time.time()
    audio.publish(f"{root}/qos/audio.hall/levels", b"", retain=True)  # withdrawn
    removed = _since(ha, lambda m: m.topic == _device_topic(gateway_id, "mic", "hall"), sent)
    assert removed.payload == b""

    sent = time.time()
    audio.publish(f"{root}/status/audio-classifier", b"", retain=True)  # the stage is gone
    removed = _since(ha, lambda m: m.topic == _device_topic(gateway_id, "mic", "porch"), sent)
    assert removed.payload == b""
    # The gateway's own device stays.
    assert not ha.received(lambda m: m.topic == _device_topic(gateway_id) and not m.payload)


def test_a_device_of_an_earlier_run_that_is_gone_is_removed(
    stage: StartStage, probe: MakeProbe, root: str, gateway_id: str
) -> None:
    ha = probe("operator")
    ha.subscribe(DISCOVERY)
    # What an earlier ha-discovery left retained (published here as ha-discovery).
    earlier = probe("ha-discovery")
    stale = _device_topic(gateway_id, "gas", "attic")
    earlier.publish(
        stale, b'{"dev": {"ids": ["x"]}, "o": {"name": "edgegw"}, "cmps": {}}', retain=True
    )
    ha.wait_for(lambda m: m.topic == stale and bool(m.payload))
    sent = time.time()
    stage("ha-discovery", EDGEGW_SETTLE_S="0.5", EDGEGW_DEBOUNCE_S="0.1")
    removed = _since(ha, lambda m: m.topic == stale and not m.payload, sent)
    assert removed.payload == b""
