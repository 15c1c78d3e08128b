"""A paho client on the cloud broker (TLS, client certificate), independent
of the code under test. Its session is persistent and it subscribes again on
every connect, so it misses nothing across a restart of the cloud broker."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes

from tests.harness.probe import MakeProbe, PahoCollector, Watch, new_properties
from tests.harness.stage_process import StageProcess
from tests.integration.cloud.cloud_broker import CLOUD_OPERATOR, CloudBroker


class MakeCloudProbe(Protocol):
    """The `cloud_probe` fixture: a client of the cloud broker (TLS)."""

    def __call__(
        self,
        *,
        ca: Path | None = None,
        with_client_cert: bool = True,
        connect_timeout_s: float = 10.0,
    ) -> CloudProbe: ...


class StartBridge(Protocol):
    """The `bridge` fixture: starts cloud-bridge with environment overrides."""

    def __call__(self, **env: str) -> StageProcess: ...


class CloudProbe(PahoCollector):
    _label = "cloud: "
    _waits_through_refusals = True  # paho retries until the cloud accepts

    def __init__(
        self,
        cloud: CloudBroker,
        *,
        ca: Path | None = None,
        with_client_cert: bool = True,
        connect_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(f"cloud-probe-{uuid.uuid4().hex[:8]}")
        self._topics: list[str] = []
        self._client.username_pw_set(CLOUD_OPERATOR, cloud.passwords[CLOUD_OPERATOR])
        self._client.tls_set(
            ca_certs=str(ca or cloud.pki.ca),
            certfile=str(cloud.pki.client_cert) if with_client_cert else None,
            keyfile=str(cloud.pki.client_key) if with_client_cert else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        properties = new_properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        connected = self._connect(
            cloud.host, cloud.port, connect_timeout_s, clean_start=False, properties=properties
        )
        if not connected:
            self.close()
            raise ConnectionError("cloud probe did not connect")

    def _on_accepted(self, client: mqtt.Client) -> None:
        for topic in self._topics:
            client.subscribe(topic, 1)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self._client.on_subscribe = lambda *args: done.set()
        self._topics.append(topic)
        self._client.subscribe(topic, 1)
        if not done.wait(10):
            raise TimeoutError(f"no SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def publish_all(self, messages: list[tuple[str, bytes, int]], timeout_s: float = 60) -> None:
        """(topic, payload, qos) in one burst, without waiting between them;
        returns once every one has been written (QoS 0) or acknowledged (QoS 1)."""
        infos = [self._client.publish(topic, data, qos=qos) for topic, data, qos in messages]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError(f"burst not published within {timeout_s} s")


@dataclass(frozen=True)
class CloudRig:
    """The `rig` fixture: what a cloud-bridge test drives (the gateway's tree,
    the cloud broker, probes at both ends, the bridge between them)."""

    root: str
    cloud: CloudBroker
    probe: MakeProbe
    at_gateway: Watch  # an operator on the gateway broker, subscribed to topics of its tree
    bridge: StartBridge
    cloud_probe: MakeCloudProbe

    def at_cloud(self, *topics: str) -> CloudProbe:
        """A cloud probe subscribed to these topics of the gateway's tree."""
        watcher = self.cloud_probe()
        for topic in topics:
            watcher.subscribe(f"{self.root}/{topic}")
        return watcher
