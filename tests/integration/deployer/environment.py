"""What the deployer's tests and bench run in: an internal analytics network
(no route out, no traffic between containers), a broker listening on that
network's bridge address, and helpers to forget the example images."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from broker.generate import write_local
from schemas.topics import DEPLOYED_ANALYTIC
from services.deployer.engine import Engine
from services.deployer.settings import DeployerSettings
from tests.harness.broker import MosquittoBroker
from tools.analytic_images import PREFIX, example_images
from tools.local_registry import LocalRegistry


@dataclass(frozen=True)
class AnalyticsNetwork:
    name: str
    gateway: str


class BridgeBroker(MosquittoBroker):
    """The project's broker, listening on the analytics network's bridge
    address (reachable from the host and from the analytics' containers)."""

    def __init__(self, directory: Path, bind: str) -> None:
        super().__init__(directory)
        self.passwords = write_local(directory, self.port, bind=bind)
        self.host = bind


def create_network(engine: Any, prefix: str = "edgegw-test") -> AnalyticsNetwork:
    """A fresh analytics network, made by the deployer's own code (the broker
    must listen on its bridge address before the deployer starts)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    deployer_engine = Engine(DeployerSettings.model_fields["docker_url"].default, 60)

    async def ensure() -> str:
        await deployer_engine.connect()
        try:
            return await deployer_engine.ensure_network(name)
        finally:
            deployer_engine.close()

    return AnalyticsNetwork(name, asyncio.run(ensure()))


def gateway_containers(engine: Any, gateway_id: str) -> list[Any]:
    """Every container the deployer of `gateway_id` made (its label), stopped ones too."""
    return list(engine.containers.list(all=True, filters={"label": f"edgegw.gateway={gateway_id}"}))


def remove_gateway_containers(engine: Any, gateway_id: str) -> None:
    for container in gateway_containers(engine, gateway_id):
        container.remove(force=True)


def remove_network(engine: Any, name: str) -> None:
    network = engine.networks.get(name)
    network.reload()
    for container in network.containers:
        container.remove(force=True)
    network.remove()


def drop_local(engine: Any, registry: LocalRegistry, name: str, tag: str | None = None) -> None:
    """Forget every local tag of one example analytic, whatever registry it
    came from (its layers shared with images still tagged stay on disk)."""
    wanted = {image.local for image in example_images() if image.name == name}
    if tag is not None:
        wanted = {local for local in wanted if local.endswith(f":{tag}")}
    pinned = f"/{PREFIX}/{name}@" if tag is None else None  # pulled by digest
    for image in engine.images.list():
        digests = image.attrs.get("RepoDigests") or []
        for reference in [*image.tags, *digests]:
            if (
                reference in wanted
                or any(reference.endswith(f"/{w}") for w in wanted)
                or (pinned is not None and pinned in reference and not image.tags)
            ):
                with contextlib.suppress(docker.errors.ImageNotFound):
                    engine.images.remove(reference, force=True)


def registry_reference(registry: LocalRegistry, name: str, tag: str = "1") -> str:
    return f"{registry.address}/{PREFIX}/{name}:{tag}"


DYNSEC_ADMIN = "dynsec-admin"


def uses_dynsec(broker: MosquittoBroker) -> bool:
    """Whether the project's broker runs the dynamic security plugin (its
    admin identity exists): then each analytic gets its own identity."""
    return DYNSEC_ADMIN in broker.passwords


def identity_env(broker: MosquittoBroker) -> dict[str, str]:
    """How the deployer gives analytics a broker identity on this broker."""
    if uses_dynsec(broker):
        return {
            "EDGEGW_BROKER_IDENTITIES": "dynsec",
            "EDGEGW_DYNSEC_ADMIN_PASSWORD": broker.passwords[DYNSEC_ADMIN],
        }
    return {
        "EDGEGW_BROKER_IDENTITIES": "shared",
        "EDGEGW_ANALYTIC_MQTT_PASSWORD": broker.passwords[DEPLOYED_ANALYTIC],
    }


def publish_as(
    broker: MosquittoBroker, username: str, password: str, client_id: str, topic: str
) -> str:
    """Connect with these credentials and client id, publish once at QoS 1:
    'refused: <reason>' for a refused connect, else the PUBACK reason code."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    outcome: list[str] = []
    done = threading.Event()

    def on_connect(c: mqtt.Client, u: object, f: object, code: ReasonCode, p: object) -> None:
        if code.is_failure:
            outcome.append(f"refused: {code}")
            done.set()
        else:
            c.publish(topic, b"{}", qos=1)

    def on_publish(c: mqtt.Client, u: object, mid: int, code: ReasonCode, p: object) -> None:
        outcome.append(str(code.value))
        done.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    try:
        client.connect(broker.host, broker.port, keepalive=10)
    except OSError as error:
        return f"refused: {error}"
    client.loop_start()
    try:
        done.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome[0] if outcome else "refused: no answer"
