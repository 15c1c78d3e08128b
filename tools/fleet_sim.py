"""A fleet into one cloud: N gateways, each its own Mosquitto (the project's
broker config) and its own cloud-bridge process (own spool file, own cloud
login and client certificate), all bridged to one TLS cloud Mosquitto.

    python tools/fleet_sim.py --gateways 50        # make fleet-sim

Measured, printed as JSON (exit 1 when a check fails):
- alerts: every alert published on every gateway arrives at the cloud (by id);
- config: a cloud `config/<stage>` change for every gateway, published at once,
  reaches each gateway broker (retained, by its bridge) within 5 s;
- fairness: with the backhaul squeezed (the cloud broker in a network namespace
  of its own behind a veth pair whose gateway->cloud side is shaped with `tc`
  tbf), every gateway offers more than its share; Jain's index of the bytes
  each gateway delivered in the steady part of the squeeze. Then the squeeze
  is lifted and every squeezed alert must arrive too.

Everything is local and bounded: the namespace, the veth pair and its qdisc
exist only for the run (root required; `--no-squeeze` skips that part), every
wait has a deadline, and the whole run stops itself.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python tools/fleet_sim.py` from anywhere
    sys.path.insert(0, str(REPO))

from schemas.qos import QosKnob, QosLevel  # noqa: E402
from schemas.topics import STAGES  # noqa: E402
from tests.harness.broker import MosquittoBroker, free_port, stop_process  # noqa: E402
from tests.integration.cloud.cloud_broker import _issue, _make_ca  # noqa: E402
from tests.integration.cloud.cloud_helpers import alert_bytes  # noqa: E402

CLOUD_OPERATOR = "cloud-operator"
CONFIG_STAGE = "gas-average"  # whose config the cloud changes (no such stage runs: the
# retained message on the gateway broker is what is measured)
# Each gateway's cloud user is its gateway id; `%u` keeps it in its own tree.
CLOUD_ACL = f"""pattern write edgegw/%u/alert/#
pattern write edgegw/%u/summary/#
pattern write edgegw/%u/status/#
pattern write edgegw/%u/deadletter/#
pattern write edgegw/%u/snapshot/#
pattern read edgegw/%u/config/#

user {CLOUD_OPERATOR}
topic readwrite edgegw/#
"""
NETNS_HOST_IP, NETNS_CLOUD_IP = "10.251.7.1", "10.251.7.2"


@dataclass(frozen=True)
class FleetOptions:
    gateways: int = 50
    alerts_per_gateway: int = 20
    config_deadline_s: float = 5.0
    squeeze: bool = True
    squeeze_kbps: int = 4000  # the shared backhaul while squeezed
    squeeze_s: float = 15.0
    squeeze_offer: float = 1.25  # each gateway offers this many times its fair share
    squeeze_alert_bytes: int = 8000
    startup_timeout_s: float = 90.0
    deliver_timeout_s: float = 45.0
    time_limit_s: float = 180.0  # the whole run, stopping included
    stop_reserve_s: float = 25.0  # SIGTERM to 50 bridges, then the brokers


@dataclass
class Counter:
    """Messages seen by one MQTT client, by (gateway, id), with bytes and time."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    retained: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    duplicates: int = 0


def _client(name: str, user: str, password: str) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        # A stage identity is bound to its own client id on a gateway broker
        # (dynamic security); the operator's and the cloud's users are not.
        client_id=user if user in STAGES else f"{name}-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(user, password)
    client.max_queued_messages_set(0)
    return client


def _connect(client: mqtt.Client, host: str, port: int, timeout_s: float = 15.0) -> None:
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not connected.wait(timeout_s):
        raise ConnectionError(f"no connection to {host}:{port}")


def _wait(
    condition: Callable[[], bool], timeout_s: float, step_s: float = 0.1, until: float = 1e18
) -> bool:
    """Poll `condition` for `timeout_s`, never past `until` (the run's deadline)."""
    deadline = min(time.monotonic() + timeout_s, until)
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


def jain_index(values: list[float]) -> float:
    """(sum x)^2 / (n * sum x^2): 1 when all are equal, 1/n when one takes all."""
    square_sum = sum(v * v for v in values)
    return (sum(values) ** 2) / (len(values) * square_sum) if square_sum else 0.0


# -- the squeezed backhaul: a network namespace for the cloud broker ------------


class Backhaul:
    """The cloud broker's own network namespace behind a veth pair; `squeeze`
    shapes the gateway->cloud direction with a tbf qdisc on the host end."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.netns = f"edgegw-fleet-{tag}"
        self.host_if, self.cloud_if = f"efh{tag}", f"efc{tag}"
        self.up = False

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    def create(self) -> None:
        self._ip("netns", "add", self.netns)
        self.up = True
        self._ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.cloud_if)
        self._ip("link", "set", self.cloud_if, "netns", self.netns)
        self._ip("addr", "add", f"{NETNS_HOST_IP}/30", "dev", self.host_if)
        self._ip("link", "set", self.host_if, "up")
        inside = ("netns", "exec", self.netns, "ip")
        self._ip(*inside, "addr", "add", f"{NETNS_CLOUD_IP}/30", "dev", self.cloud_if)
        self._ip(*inside, "link", "set", self.cloud_if, "up")
        self._ip(*inside, "link", "set", "lo", "up")

    def squeeze(self, kbps: int) -> None:
        # burst: 10 ms of the rate (at least 2 MTU); a queue of at most 200 ms.
        burst = max(3200, kbps * 1000 // 8 // 100)
        subprocess.run(
            ["tc", "qdisc", "replace", "dev", self.host_if, "root", "tbf",
             "rate", f"{kbps}kbit", "burst", str(burst), "latency", "200ms"],
            check=True, capture_output=True, timeout=10,
        )  # fmt: skip

    def release(self) -> None:
        subprocess.run(
            ["tc", "qdisc", "del", "dev", self.host_if, "root"],
            check=False, capture_output=True, timeout=10,
        )  # fmt: skip

    def remove(self) -> None:
        if self.up:
            # Deleting the namespace deletes its veth end, and with it the pair.
            subprocess.run(["ip", "netns", "del", self.netns], check=False, timeout=10)
            subprocess.run(
                ["ip", "link", "del", self.host_if], check=False, capture_output=True, timeout=10
            )
            self.up = False


# -- the cloud -----------------------------------------------------------------


@dataclass
class Cloud:
    directory: Path
    host: str
    port: int
    ca: Path
    passwords: dict[str, str]
    certs: dict[str, tuple[Path, Path]]
    process: subprocess.Popen[bytes] | None = None


def make_cloud(directory: Path, gateways: list[str], host: str, netns: str | None) -> Cloud:
    directory.mkdir(parents=True)
    ca = _make_ca(directory, "fleet-ca")
    server = _issue(
        directory, ca, "cloud-server",
        f"subjectAltName=IP:{host},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )  # fmt: skip
    # One at a time: openssl's -CAcreateserial updates one serial file.
    certs = {gw: _issue(directory, ca, gw, "extendedKeyUsage=clientAuth\n") for gw in gateways}
    passwords = {gw: secrets.token_urlsafe(12) for gw in gateways}
    passwords[CLOUD_OPERATOR] = secrets.token_urlsafe(12)
    passwd = directory / "passwd"
    passwd.write_text("".join(f"{u}:{p}\n" for u, p in passwords.items()))
    subprocess.run(
        [shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-U", str(passwd)],
        check=True,
        timeout=60,
    )
    (directory / "acl").write_text(CLOUD_ACL)
    port = free_port()
    conf = directory / "cloud.conf"
    conf.write_text(
        "per_listener_settings false\n"
        f"listener {port} {host}\n"
        f"cafile {ca[1]}\ncertfile {server[0]}\nkeyfile {server[1]}\n"
        "require_certificate true\nallow_anonymous false\n"
        f"password_file {passwd}\nacl_file {directory / 'acl'}\n"
        "max_queued_messages 200000\nmax_inflight_messages 100\n"
        f"user {getpass.getuser()}\n"  # Mosquitto started as root would drop to `mosquitto`
        "log_dest stdout\nlog_type error\nlog_type warning\n"
    )
    log = (directory / "cloud.log").open("ab")
    command = [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    cloud = Cloud(directory, host, port, ca[1], passwords, certs, process)
    if not _wait(lambda: _listening(host, port), 10):
        raise RuntimeError(f"cloud broker did not start: {(directory / 'cloud.log').read_text()}")
    return cloud


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def cloud_client(cloud: Cloud, name: str) -> mqtt.Client:
    client = _client(name, CLOUD_OPERATOR, cloud.passwords[CLOUD_OPERATOR])
    gw = next(iter(cloud.certs))
    client.tls_set(
        ca_certs=str(cloud.ca),
        certfile=str(cloud.certs[gw][0]),
        keyfile=str(cloud.certs[gw][1]),
        cert_reqs=ssl.CERT_REQUIRED,
    )
    return client


# -- the gateways ----------------------------------------------------------------


@dataclass
class Gateway:
    gateway_id: str
    broker: MosquittoBroker
    bridge: subprocess.Popen[bytes] | None = None
    publisher: mqtt.Client | None = None
    allocator: mqtt.Client | None = None
    watcher: mqtt.Client | None = None


def bridge_env(gateway: Gateway, cloud: Cloud, directory: Path) -> dict[str, str]:
    gw = gateway.gateway_id
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        **gateway.broker.env_for("cloud-bridge", gw),
        "EDGEGW_SPOOL_PATH": str(directory / "spool.db"),
        "EDGEGW_BUDGET_KBPS": "100000",  # the squeeze, not the bridge's budget, limits
        "EDGEGW_CLOUD_MQTT_HOST": cloud.host,
        "EDGEGW_CLOUD_MQTT_PORT": str(cloud.port),
        "EDGEGW_CLOUD_MQTT_USERNAME": gw,
        "EDGEGW_CLOUD_MQTT_PASSWORD": cloud.passwords[gw],
        "EDGEGW_CLOUD_MQTT_TLS_CA": str(cloud.ca),
        "EDGEGW_CLOUD_MQTT_TLS_CERT": str(cloud.certs[gw][0]),
        "EDGEGW_CLOUD_MQTT_TLS_KEY": str(cloud.certs[gw][1]),
        "EDGEGW_CLOUD_RECONNECT_MAX_S": "1",
        # A squeezed share is a few kB/s: few PUBACKs awaited, a patient timeout.
        "EDGEGW_CLOUD_IN_FLIGHT": "4",
        "EDGEGW_CLOUD_PUBLISH_TIMEOUT_S": "20",
        "EDGEGW_LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def fleet(
    workdir: Path, options: FleetOptions
) -> Iterator[tuple[Cloud, list[Gateway], Backhaul | None]]:
    """Brokers, cloud and bridges up; everything stopped and removed on exit."""
    ids = [f"gw{n:03d}" for n in range(options.gateways)]
    backhaul = Backhaul() if options.squeeze else None
    gateways: list[Gateway] = []
    cloud: Cloud | None = None
    try:
        if backhaul is not None:
            backhaul.create()
        host = NETNS_CLOUD_IP if backhaul else "127.0.0.1"
        cloud = make_cloud(workdir / "cloud", ids, host, backhaul.netns if backhaul else None)

        def start_gateway(gw: str) -> Gateway:
            # Each bridge starts as soon as its broker listens: imports overlap set-up.
            broker = MosquittoBroker(workdir / gw / "broker")
            broker.start()
            gateway = Gateway(gw, broker)
            gateways.append(gateway)
            assert cloud is not None
            gateway.bridge = subprocess.Popen(
                [sys.executable, "-m", "services.cloud_bridge"],
                cwd=REPO,
                env=bridge_env(gateway, cloud, workdir / gw),
                stdout=(workdir / gw / "bridge.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            return gateway

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(start_gateway, ids))
        gateways.sort(key=lambda g: g.gateway_id)
        yield cloud, gateways, backhaul
    finally:
        progress("stopping")
        for gateway in gateways:
            for client in (gateway.publisher, gateway.allocator, gateway.watcher):
                if client is not None:
                    client.disconnect()
                    client.loop_stop()
            if gateway.bridge is not None:
                gateway.bridge.terminate()
        for gateway in gateways:
            if gateway.bridge is not None:
                try:
                    gateway.bridge.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    gateway.bridge.kill()
                    gateway.bridge.wait(timeout=10)
        for gateway in gateways:
            gateway.broker.stop()
        if cloud is not None and cloud.process is not None:
            stop_process(cloud.process)
        if backhaul is not None:
            backhaul.release()
            backhaul.remove()
        progress("stopped")


# -- the run -----------------------------------------------------------------------


def progress(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} fleet-sim: {what}", file=sys.stderr, flush=True)


def run_fleet(workdir: Path, options: FleetOptions) -> dict[str, object]:
    started = time.monotonic()
    until = started + options.time_limit_s - options.stop_reserve_s
    result: dict[str, object] = {
        "gateways": options.gateways,
        "topology": "one Mosquitto and one cloud-bridge process per gateway; one TLS cloud "
        "Mosquitto; own spool, cloud user and client certificate per gateway",
    }
    with fleet(workdir, options) as (cloud, gateways, backhaul):
        progress(f"{len(gateways)} gateway brokers up, bridges starting")
        counter = Counter()
        observer = cloud_client(cloud, "fleet-observer")

        def on_cloud(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
            parts = message.topic.split("/")
            gw = parts[1]
            if parts[2] == "status" and message.payload == b"online":
                with counter.lock:
                    counter.retained[f"{gw}/{'/'.join(parts[3:])}"] = (b"online", time.time())
                return
            if parts[2] != "alert":
                return
            key = (gw, orjson.loads(message.payload)["id"])
            with counter.lock:
                if key in counter.seen:
                    counter.duplicates += 1
                else:
                    counter.seen[key] = (len(message.payload), time.monotonic())

        observer.on_message = on_cloud
        _connect(observer, cloud.host, cloud.port)
        observer.subscribe([("edgegw/+/alert/#", 1), ("edgegw/+/status/cloud-bridge", 1)])

        def bridges_online() -> int:
            with counter.lock:
                return sum(1 for k in counter.retained if k.endswith("/cloud-bridge"))

        for gateway in gateways:
            broker = gateway.broker
            gateway.publisher = _client(
                f"pub-{gateway.gateway_id}", "alert-forwarder", broker.passwords["alert-forwarder"]
            )
            _connect(gateway.publisher, broker.host, broker.port)
            gateway.allocator = _client(
                f"alloc-{gateway.gateway_id}",
                "bandwidth-allocator",
                broker.passwords["bandwidth-allocator"],
            )
            _connect(gateway.allocator, broker.host, broker.port)
        up = _wait(lambda: bridges_online() == len(gateways), options.startup_timeout_s, 0.5, until)
        result["startup"] = {
            "bridges_online_at_cloud": bridges_online(),
            "seconds": round(time.monotonic() - started, 1),
        }
        progress(f"{bridges_online()} bridges online at the cloud")
        if not up:
            result["ok"] = False
            return result
        result["config"] = push_config(cloud, gateways, options, until)
        progress("config pushed")
        result["alerts"] = send_alerts(gateways, counter, options, until)
        progress("alerts counted")
        if backhaul is not None:
            result["fairness"] = squeeze(gateways, counter, options, backhaul, until)
            progress("squeeze done")
        observer.disconnect()
        observer.loop_stop()
    result["seconds"] = round(time.monotonic() - started, 1)
    checks = [result["config"], result["alerts"], result.get("fairness", {"ok": True})]
    result["ok"] = all(bool(c["ok"]) for c in checks if isinstance(c, dict))
    return result


def push_config(
    cloud: Cloud, gateways: list[Gateway], options: FleetOptions, until: float
) -> dict[str, object]:
    """The cloud sets `config/<stage>` of every gateway at once; when does each
    gateway broker hold it (retained, republished by its bridge)?"""
    marker = secrets.randbelow(10**6) + 1
    payload = orjson.dumps({"time_window_s": 30, "count_window": marker % 1000 + 1})
    arrived: dict[str, float] = {}
    lock = threading.Lock()
    for gateway in gateways:
        broker = gateway.broker
        watcher = _client(f"watch-{gateway.gateway_id}", "operator", broker.passwords["operator"])
        gw = gateway.gateway_id

        def on_config(
            client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage, gw: str = gw
        ) -> None:
            if message.payload == payload:
                with lock:
                    arrived.setdefault(gw, time.monotonic())

        watcher.on_message = on_config
        _connect(watcher, broker.host, broker.port)
        watcher.subscribe(f"edgegw/{gw}/config/{CONFIG_STAGE}", 1)
        gateway.watcher = watcher
    time.sleep(0.5)  # SUBACKs
    author = cloud_client(cloud, "fleet-config")
    _connect(author, cloud.host, cloud.port)
    sent: dict[str, float] = {}
    infos = []
    for gateway in gateways:
        sent[gateway.gateway_id] = time.monotonic()
        topic = f"edgegw/{gateway.gateway_id}/config/{CONFIG_STAGE}"
        infos.append(author.publish(topic, payload, qos=1, retain=True))
    _wait(lambda: len(arrived) == len(gateways), options.config_deadline_s + 5, until=until)
    for info in infos:
        info.wait_for_publish(5)
    # Clear the retained configs again: the cloud keeps nothing of the run.
    for gateway in gateways:
        author.publish(f"edgegw/{gateway.gateway_id}/config/{CONFIG_STAGE}", b"", 1, True)
    author.disconnect()
    author.loop_stop()
    latencies = sorted(arrived[gw] - sent[gw] for gw in arrived)
    within = sum(1 for v in latencies if v <= options.config_deadline_s)
    return {
        "reached": len(arrived),
        "within_deadline": within,
        "deadline_s": options.config_deadline_s,
        "latency_s_p50": round(statistics.median(latencies), 3) if latencies else None,
        "latency_s_max": round(latencies[-1], 3) if latencies else None,
        "ok": within == len(gateways),
    }


def send_alerts(
    gateways: list[Gateway], counter: Counter, options: FleetOptions, until: float
) -> dict[str, object]:
    """Each gateway's alerts (QoS 1 on its own broker); which reach the cloud?"""
    expected: set[tuple[str, str]] = set()
    t0 = time.monotonic()
    for gateway in gateways:
        assert gateway.publisher is not None
        for number in range(options.alerts_per_gateway):
            alert_id, payload = alert_bytes(number, prefix=f"{gateway.gateway_id}-")
            expected.add((gateway.gateway_id, alert_id))
            gateway.publisher.publish(f"edgegw/{gateway.gateway_id}/alert/kitchen", payload, 1)

    def missing() -> set[tuple[str, str]]:
        with counter.lock:
            return expected - counter.seen.keys()

    _wait(lambda: not missing(), options.deliver_timeout_s, 0.2, until)
    lost = missing()
    with counter.lock:
        last = max((counter.seen[k][1] for k in expected - lost), default=t0)
    return {
        "published": len(expected),
        "arrived": len(expected) - len(lost),
        "missing_by_gateway": sorted({gw for gw, _ in lost}),
        "duplicates_at_cloud": counter.duplicates,
        "all_arrived_after_s": round(last - t0, 2) if not lost else None,
        "ok": not lost,
    }


def uplink_knob(kbps: float) -> bytes:
    """A `qos/uplink` knob as the bandwidth allocator publishes it."""
    level = QosLevel(name="fleet-share", params={"kbps": kbps}, cost_kbps=kbps, utility=1.0)
    knob = QosKnob(source="bandwidth-allocator", analytic="uplink", level=level, budget_kbps=kbps)
    return knob.to_bytes()


def set_budgets(gateways: list[Gateway], kbps: float) -> None:
    """Each gateway's retained `qos/uplink`, as its bandwidth allocator would."""
    infos = []
    for gateway in gateways:
        assert gateway.allocator is not None
        topic = f"edgegw/{gateway.gateway_id}/qos/uplink"
        infos.append(gateway.allocator.publish(topic, uplink_knob(kbps), 1, True))
    for info in infos:
        info.wait_for_publish(10)


def delivered_in(
    counter: Counter, gateways: list[Gateway], start: float, end: float
) -> dict[str, object]:
    """Alert bytes each gateway delivered to the cloud in [start, end]."""
    delivered = dict.fromkeys((g.gateway_id for g in gateways), 0)
    with counter.lock:
        for (gw, _), (nbytes, at) in counter.seen.items():
            if start <= at <= end:
                delivered[gw] += nbytes
    kbps = [v * 8 / 1000 / (end - start) for v in delivered.values()]
    return {
        "window_s": round(end - start, 1),
        "delivered_kbps_total": round(sum(kbps), 1),
        "delivered_kbps_per_gateway_min": round(min(kbps), 2),
        "delivered_kbps_per_gateway_max": round(max(kbps), 2),
        "jain_index": round(jain_index(kbps), 4),
    }


def squeeze(
    gateways: list[Gateway],
    counter: Counter,
    options: FleetOptions,
    backhaul: Backhaul,
    until: float,
) -> dict[str, object]:
    """Every gateway offers `squeeze_offer` x its fair share of the squeezed
    backhaul, for two periods: first with nothing but TCP sharing the link,
    then with each bridge's budget set to an equal share on its `qos/uplink`
    knob (what a fleet-level allocator would do). Jain's index of the bytes
    each gateway delivered in the steady part of each period."""
    share_kbps = options.squeeze_kbps / len(gateways)
    size = len(alert_bytes(0, pad=options.squeeze_alert_bytes, prefix="gw000-s-")[1])
    interval = size * 8 / 1000 / (share_kbps * options.squeeze_offer)
    tag = uuid.uuid4().hex[:4]
    backhaul.squeeze(options.squeeze_kbps)
    expected: set[tuple[str, str]] = set()
    # Two periods, and time left to drain what the squeeze held back.
    period = max(4.0, min(options.squeeze_s, (until - time.monotonic() - 20) / 2))
    t0 = time.monotonic()
    budgets_set = False
    number = 0
    while time.monotonic() - t0 < 2 * period:
        if not budgets_set and time.monotonic() - t0 >= period:
            # TLS, MQTT and TCP framing ride on top of what the bridges count.
            set_budgets(gateways, share_kbps * 0.8)
            budgets_set = True
            t_budgets = time.monotonic()
        for gateway in gateways:
            assert gateway.publisher is not None
            alert_id, payload = alert_bytes(
                number, pad=options.squeeze_alert_bytes, prefix=f"{gateway.gateway_id}-{tag}-"
            )
            expected.add((gateway.gateway_id, alert_id))
            gateway.publisher.publish(f"edgegw/{gateway.gateway_id}/alert/kitchen", payload, 1)
        number += 1
        time.sleep(max(0.0, t0 + number * interval - time.monotonic()))
    t_end = time.monotonic()
    settle = period / 4  # TCP windows and token buckets have settled by then
    tcp_only = delivered_in(counter, gateways, t0 + settle, t0 + period)
    with_budgets = delivered_in(counter, gateways, t_budgets + settle, t_end)
    set_budgets(gateways, 100000.0)
    backhaul.release()

    def missing() -> set[tuple[str, str]]:
        with counter.lock:
            return expected - counter.seen.keys()

    _wait(lambda: not missing(), options.deliver_timeout_s, 0.2, until)
    lost = missing()
    return {
        "backhaul_kbps": options.squeeze_kbps,
        "offered_kbps": round(size * 8 / 1000 / interval * len(gateways), 1),
        "period_s": round(period, 1),
        "tcp_only": tcp_only,
        "budget_per_gateway_kbps": round(share_kbps * 0.8, 2),
        "with_equal_budgets": with_budgets,
        "squeezed_alerts": len(expected),
        "squeezed_alerts_arrived_after_release": len(expected) - len(lost),
        "drained_after_s": round(time.monotonic() - t_end, 1),
        "ok": not lost and float(str(with_budgets["jain_index"])) >= 0.9,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=FleetOptions.gateways)
    parser.add_argument("--alerts", type=int, default=FleetOptions.alerts_per_gateway)
    parser.add_argument("--squeeze-kbps", type=int, default=FleetOptions.squeeze_kbps)
    parser.add_argument("--squeeze-s", type=float, default=FleetOptions.squeeze_s)
    parser.add_argument("--no-squeeze", action="store_true", help="skip the tc part (no root)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep its logs")
    args = parser.parse_args(argv)
    options = FleetOptions(
        gateways=args.gateways,
        alerts_per_gateway=args.alerts,
        squeeze=not args.no_squeeze,
        squeeze_kbps=args.squeeze_kbps,
        squeeze_s=args.squeeze_s,
    )
    if options.squeeze and os.geteuid() != 0:
        parser.error("the squeeze needs root (a network namespace and tc); or --no-squeeze")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run_fleet(args.keep, options)
    else:
        with tempfile.TemporaryDirectory(prefix="edgegw-fleet-") as workdir:
            result = run_fleet(Path(workdir), options)
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    raise SystemExit(main())
