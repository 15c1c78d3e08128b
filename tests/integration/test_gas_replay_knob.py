"""gas-replay's knob is validated through GasKnobParams: a bad `qos/gas.<sensor>`
is dead-lettered naming the field, and the stage keeps obeying good ones."""

from __future__ import annotations

import orjson


def _gas_knob(params: dict[str, object]) -> bytes:
    return orjson.dumps(
        {
            "source": "bandwidth-allocator",
            "analytic": "gas.kitchen",
            "level": {"name": "test", "params": params, "cost_kbps": 1.0, "utility": 0.5},
        }
    )


def test_bad_gas_knob_is_dead_lettered_naming_the_field(stage, probe, root) -> None:  # type: ignore[no-untyped-def]
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=0)
    stage("gas-replay", EDGEGW_SENSORS="kitchen:co", EDGEGW_SEED="4", EDGEGW_SPEED="1")
    online = f"{root}/status/gas-replay"
    observer.wait_for(lambda m: m.topic == online and m.payload == b"online")
    allocator = probe("bandwidth-allocator")
    knob_topic, letters = f"{root}/qos/gas.kitchen", f"{root}/deadletter/gas-replay"

    bad: list[dict[str, object]] = [
        {"sample_period_s": "0.5"},
        {"sample_period_s": True},
        {"period": 1.0},
    ]
    for params in bad:
        assert allocator.publish(knob_topic, _gas_knob(params), retain=True) == 0
    seen = observer.wait_for(lambda m: m.topic == letters, count=3)
    reasons = [m.json()["reason"] for m in seen]
    assert "qos/gas.kitchen: level.params.sample_period_s:" in reasons[0]
    assert "level.params.sample_period_s:" in reasons[1]
    assert "level.params.period: Extra inputs are not permitted" in reasons[2]

    assert allocator.publish(knob_topic, _gas_knob({"sample_period_s": 0.5}), retain=True) == 0
    readings = f"{root}/sensor/gas/kitchen"
    since = observer.wait_for(lambda m: m.topic == readings)[-1].at
    observer.wait_for(lambda m: m.topic == readings and m.at > since + 1.0)
    assert len(observer.received(lambda m: m.topic == letters)) == 3
    assert allocator.publish(knob_topic, b"", retain=True) == 0
