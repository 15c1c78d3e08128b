"""TLS to the cloud: certificates are always checked, both ways."""

from __future__ import annotations

import time

import pytest

from tests.integration.cloud.cloud_broker import CloudBroker
from tests.integration.cloud.cloud_probe import CloudRig, MakeCloudProbe


def test_unknown_server_ca_is_refused_and_the_right_ca_with_client_cert_connects(
    rig: CloudRig,
) -> None:
    watcher = rig.at_cloud("status/cloud-bridge")
    local = rig.at_gateway("uplink/usage")

    distrustful = rig.bridge(EDGEGW_CLOUD_MQTT_TLS_CA=str(rig.cloud.pki.rogue_ca))
    usage = local.wait_for(lambda m: True, timeout_s=10)[-1].json()
    time.sleep(2.0)  # several connection attempts at EDGEGW_CLOUD_RECONNECT_MAX_S=1
    assert usage["cloud_connected"] is False
    assert not watcher.received(lambda m: m.payload == b"online")
    assert "CERTIFICATE_VERIFY_FAILED" in distrustful.output()
    distrustful.terminate()
    assert distrustful.wait(10) == 0

    trusting = rig.bridge()
    watcher.wait_for(lambda m: m.payload == b"online", timeout_s=10)
    assert trusting.poll() is None


def test_cloud_broker_refuses_a_client_without_a_certificate(
    cloud: CloudBroker, cloud_probe: MakeCloudProbe
) -> None:
    with pytest.raises(ConnectionError):
        cloud_probe(with_client_cert=False, connect_timeout_s=3)
    assert cloud_probe().refused is None
