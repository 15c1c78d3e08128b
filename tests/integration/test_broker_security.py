"""The project's broker config: no anonymous access, per-stage ACLs from the registry."""

from __future__ import annotations

import pytest

from tests.harness.broker import MosquittoBroker
from tests.harness.probe import ConnectRefused, MakeProbe, Probe

NOT_AUTHORIZED = 135


def test_anonymous_and_wrong_password_are_refused(broker: MosquittoBroker) -> None:
    with pytest.raises(ConnectRefused):
        Probe(broker, None)
    with pytest.raises(ConnectRefused):
        Probe(broker, "gas-average", "not-the-password")
    with pytest.raises(ConnectRefused):
        Probe(broker, "nobody", "whatever")


def test_gas_stage_cannot_publish_alerts_nor_read_frames(probe: MakeProbe, root: str) -> None:
    gas = probe("gas-average")
    assert gas.publish(f"{root}/alert/kitchen", b'{"x": 1}') == NOT_AUTHORIZED
    assert gas.publish(f"{root}/sensor/gas/kitchen", b'{"x": 1}') == NOT_AUTHORIZED
    # Allowed: 0 (success) or 16 (success, no matching subscribers).
    assert gas.publish(f"{root}/event/kitchen", b"{}") in (0, 16)

    gas.subscribe(f"{root}/camera/+/frame", qos=0)
    detector = probe("object-detector")  # the control: the stage that may read frames
    detector.subscribe(f"{root}/camera/+/frame", qos=0)
    camera = probe("camera-capture")
    for _ in range(5):
        camera.publish(f"{root}/camera/cam1/frame", b"\xff\xd8jpeg\xff\xd9", qos=0)
    detector.wait_for(lambda m: True, count=5)
    assert gas.received() == []
