"""The project's broker config: no anonymous access, per-stage grants from the
registry, and a client id that belongs to one identity."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from broker.dynsec import ADMIN, CONTROL_TOPIC, PROBE, PROBE_TOPIC
from schemas.topics import OPERATOR, REGISTRY, STAGES, USERS, AnyTopicSpec
from tests.harness.broker import MosquittoBroker
from tests.harness.probe import ConnectRefused, MakeProbe, Probe
from tests.harness.stage_process import StartStage
from tests.integration.gas_helpers import reading

NOT_AUTHORIZED = 135


def mosquitto_sub_binary() -> str:
    found = shutil.which("mosquitto_sub")
    assert found, "mosquitto_sub (Debian's mosquitto-clients) is part of the test environment"
    return found


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


def _online(observer: Probe, root: str, count: int = 1) -> None:
    status = f"{root}/status/gas-average"
    observer.wait_for(lambda m: m.topic == status and m.payload == b"online", count=count)


def _intruders(broker: MosquittoBroker, victim: str) -> list[str]:
    """Another stage's credentials and a deployed analytic's (an identity made
    at run time), each presenting the victim's client id with a clean start;
    the users the broker let in."""
    analytic = broker.identity("object-detector")  # as the deployer will make one
    admitted = []
    for user, password in [
        ("gas-replay", broker.passwords["gas-replay"]),
        (analytic, broker.passwords[analytic]),
    ]:
        try:
            Probe(broker, user, password, client_id=victim).close()
        except ConnectRefused:
            continue
        admitted.append(user)
    return admitted


def test_no_other_credential_can_take_over_a_running_stage(
    broker: MosquittoBroker, stage: StartStage, probe: MakeProbe, root: str, gateway_id: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#")
    process = stage("gas-average", EDGEGW_PUBLISH_INTERVAL_S="0")
    _online(observer, root)
    victim = broker.env_for("gas-average", gateway_id)["EDGEGW_MQTT_USERNAME"]
    admitted = _intruders(broker, victim)
    source = probe("gas-replay")
    start = time.time()
    for index in range(3):
        source.publish(f"{root}/sensor/gas/hall", reading("hall", "co", 4.0, ts=start + index))
    observer.wait_for(lambda m: m.topic == f"{root}/gas/hall/average", count=3)
    # Never kicked: one `online`, no `offline` (its will), no reconnect.
    statuses = [m.payload for m in observer.received(lambda m: m.topic.endswith("/gas-average"))]
    assert statuses == [b"online"]
    assert process.poll() is None and '"epoch":2' not in process.output()
    assert admitted == []


def test_a_stopped_stage_keeps_its_queued_readings(
    broker: MosquittoBroker, stage: StartStage, probe: MakeProbe, root: str, gateway_id: str
) -> None:
    """The defect: a clean-start connect with the stage's client id wiped its
    persistent session, 3 of 3 queued QoS 1 readings lost."""
    observer = probe("operator")
    observer.subscribe(f"{root}/#")
    env = {"EDGEGW_PUBLISH_INTERVAL_S": "0"}
    first = stage("gas-average", **env)
    _online(observer, root)
    first.terminate()
    assert first.wait(timeout_s=10) == 0
    source = probe("gas-replay")
    start = time.time()
    for index in range(3):  # queued in the stopped stage's session
        source.publish(f"{root}/sensor/gas/cellar", reading("cellar", "co", 4.0, ts=start + index))
    victim = broker.env_for("gas-average", gateway_id)["EDGEGW_MQTT_USERNAME"]
    admitted = _intruders(broker, victim)
    stage("gas-average", **env)
    averages = observer.wait_for(lambda m: m.topic == f"{root}/gas/cellar/average", count=3)
    assert len(averages) == 3
    assert admitted == []


def _instances(root: str) -> list[tuple[AnyTopicSpec, dict[str, str], str]]:
    """Every registry topic, once per stage where it takes a `{stage}`."""
    found = []
    for spec in REGISTRY:
        stages = STAGES if "stage" in spec.params else ("",)
        for stage_name in stages:
            params = {p: stage_name if p == "stage" else "x1" for p in spec.params}
            found.append((spec, params, spec.topic(root, **params)))
    return found


def test_every_identity_may_do_exactly_what_the_registry_says(
    broker: MosquittoBroker, probe: MakeProbe, root: str
) -> None:
    """The matrix: every user x every topic instance x publish/subscribe, the
    broker's answer (PUBACK, SUBACK; the operator's deliveries on `#`)
    against the registry."""
    instances = _instances(root)
    observer = probe("operator")
    observer.subscribe(f"{root}/#")
    differ = []
    published = set()
    for user in USERS:
        client = probe(user)
        for spec, params, topic in instances:
            allowed = client.publish(topic, b"x") in (0, 16)
            if allowed:
                published.add(topic)
            if allowed != spec.may_publish(user, params):
                differ.append(f"{user} publish {topic}: broker {allowed}")
            if user == OPERATOR:
                continue  # it may subscribe to any filter; what it receives is checked below
            client.subscribe(topic)
            granted = client.last_subscribe_codes[0]
            allowed = not getattr(granted, "is_failure", True)
            if allowed != spec.may_subscribe(user, params):
                differ.append(f"{user} subscribe {topic}: broker {allowed}")
        client.close()
    receivable = {t for spec, params, t in instances if spec.may_subscribe(OPERATOR, params)}
    assert published & receivable, "nothing for the operator to receive"
    observer.wait_for(lambda m: m.topic in receivable, count=len(published & receivable))
    received = {m.topic for m in observer.received()}
    differ += [f"operator received {t}" for t in received - receivable]
    assert differ == [], f"{len(differ)} cells differ from the registry: {differ[:20]}"


def test_only_the_dynsec_admin_may_send_control_commands(
    broker: MosquittoBroker, probe: MakeProbe, root: str
) -> None:
    assert probe("operator").publish(CONTROL_TOPIC, b"{}") == NOT_AUTHORIZED
    assert probe("deployer").publish(CONTROL_TOPIC, b"{}") == NOT_AUTHORIZED
    admin = Probe(broker, ADMIN, broker.passwords[ADMIN])
    assert admin.publish(f"{root}/config/gas-average", b"{}") == NOT_AUTHORIZED
    admin.close()


def test_shared_subscriptions_follow_the_same_grants(probe: MakeProbe, root: str) -> None:
    shared = f"$share/detector/{root}/camera/+/frame"
    for user, allowed in [("object-detector", True), ("gas-average", False)]:
        client = probe(user)
        client.subscribe(shared, qos=0)
        assert getattr(client.last_subscribe_codes[0], "is_failure", True) is not allowed, user


def test_an_identity_made_at_run_time_is_bound_and_revocable(broker: MosquittoBroker) -> None:
    """What the deployer will do per analytic: create, use, revoke."""
    username = broker.identity("audio-classifier")
    password = broker.passwords[username]
    with pytest.raises(ConnectRefused):  # its own credentials, another client id
        Probe(broker, username, password, client_id="audio-classifier")
    analytic = Probe(broker, username, password)
    assert analytic.publish("edgegw/gwx/audio/m1/classes", b"{}") in (0, 16)
    broker.revoke(username, "audio-classifier")
    deadline = time.monotonic() + 5
    while analytic.connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not analytic.connected(), "a revoked identity is disconnected"
    analytic.close()
    with pytest.raises(ConnectRefused):
        Probe(broker, username, password)


def test_the_broker_probe_reads_the_uptime_and_nothing_else(
    broker: MosquittoBroker, probe: MakeProbe, root: str
) -> None:
    """compose's broker healthcheck, as it runs there (mosquitto_sub -W)."""
    password = broker.passwords[PROBE]
    sub = [mosquitto_sub_binary(), "-h", broker.host, "-p", str(broker.port), "-u", PROBE]
    sub += ["-P", password, "-i", PROBE, "-C", "1", "-W", "5", "-t"]
    done = subprocess.run([*sub, PROBE_TOPIC], capture_output=True, text=True, timeout=15)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[0]) >= 0  # "<n> seconds"
    # The control: no other topic, not even another $SYS one, and no publishing.
    # (A refused subscription still exits 0: the healthcheck greps the answer.)
    denied = subprocess.run(
        [*sub, "$SYS/broker/version"], capture_output=True, text=True, timeout=15
    )
    assert (denied.stdout, denied.stderr.strip()) == ("", "All subscription requests were denied.")
    client = Probe(broker, PROBE, password, client_id=PROBE)
    client.subscribe(f"{root}/#")
    assert getattr(client.last_subscribe_codes[0], "is_failure", False)
    assert client.publish(f"{root}/status/gas-average", b"online") == NOT_AUTHORIZED
    client.close()
