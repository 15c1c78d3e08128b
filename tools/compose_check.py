"""`make compose-check`: the containers end to end, on this machine's Docker engine.

Builds and starts compose/docker-compose.yml (tools/compose.sh: engine, base
image, build) as its own project (`edgegw-check`, on free host ports, so a
stack the operator runs is left alone), then, as the `operator` user on the
published broker port,
waits for what a site would see: every stage `online`, gas averages, a person
event from the bundled video, a sound event, the alerts the forwarder makes of
them, and points in the time-series server. The cloud bridge runs too
(`--profile cloud`) against a cloud Mosquitto on this host (TLS, client
certificates: the test PKI, valid for host.docker.internal), where alerts and
camera snapshots must arrive. Every container must also turn `healthy`
(its compose healthcheck, `docker inspect` .State.Health.Status; the time
from `up` is reported), carry CPU and memory limits and a rotated json-file
log, and a stopped stage must fail its health probe: `edgegw health gas-replay`
exits 0 in another stage's container while gas-replay runs, 1 once it is
stopped. Prints one JSON line with the times, tears the stack down (volumes
too) and exits non-zero naming what never came.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from broker.generate import env_name  # noqa: E402
from tests.harness.broker import free_port  # noqa: E402
from tests.harness.probe import Seen  # noqa: E402
from tests.integration.cloud.cloud_broker import GATEWAY_USER, CloudBroker, TestPki  # noqa: E402
from tests.integration.cloud.cloud_probe import CloudProbe  # noqa: E402

ROOT = "edgegw/gw1"
STAGES = (
    "gas-replay",
    "gas-average",
    "camera-capture",
    "object-detector",
    "object-tracker",
    "audio-capture",
    "audio-classifier",
    "alert-forwarder",
    "bandwidth-allocator",
    "telemetry-recorder",
    "cloud-bridge",
    "web",
)
PROJECT = "edgegw-check"
PROFILES = ("cloud",)
COMPOSE_FILE = REPO / "compose" / "docker-compose.yml"
CLOUD_HOST = "host.docker.internal"  # compose maps it to the host for cloud-bridge
# Stages probe their health every EDGEGW_HEALTHCHECK_INTERVAL (60 s): the
# first probe, and so `healthy`, comes a minute after the start.
TIMEOUT_S = 240.0
HEALTH_POLL_S = 2.0
# Stopped for the probe check once everything else was seen; probed from
# another stage's container with its own password.
STOPPED_STAGE, PROBING_SERVICE = "gas-replay", "gas-average"
LOG_OPTIONS = {"max-size": "10m", "max-file": "3"}


def compose(env: dict[str, str], *args: str) -> None:
    script = str(REPO / "tools" / "compose.sh")
    subprocess.run(["bash", script, *args], check=True, cwd=REPO, env={**os.environ, **env})


def compose_passwords() -> dict[str, str]:
    """compose/.env (`make compose-env`: made when missing, kept otherwise)."""
    env_file = REPO / "compose" / ".env"
    generate = [sys.executable, "-m", "broker.generate", "compose-env", "--out", str(env_file)]
    subprocess.run(generate, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    found = {}
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        found[key] = value
    return found


def expected_services() -> list[str]:
    """The services `up` starts: those of no profile or of PROFILES."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return sorted(
        name
        for name, service in services.items()
        if set(service.get("profiles", PROFILES)) & set(PROFILES)
    )


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=120, check=False
    )


def project_containers() -> dict[str, dict[str, Any]]:
    """Service -> `docker inspect` of its container in this project."""
    listed = docker(
        "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}"
    ).stdout.split()
    if not listed:
        return {}
    inspected = orjson.loads(docker("inspect", *listed).stdout or "[]")
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected}


def health_status(container: dict[str, Any]) -> str:
    return str((container["State"].get("Health") or {}).get("Status", "none"))


def resources(container: dict[str, Any]) -> dict[str, Any]:
    """The limits and log configuration the engine applied."""
    host = container["HostConfig"]
    cpus = host.get("NanoCpus") or 0
    if not cpus and host.get("CpuQuota", 0) > 0:
        cpus = host["CpuQuota"] / host["CpuPeriod"] * 1e9
    log = host.get("LogConfig") or {}
    return {
        "cpus": round(cpus / 1e9, 2),
        "memory_mb": round((host.get("Memory") or 0) / 2**20),
        "log_driver": log.get("Type"),
        "log_options": log.get("Config") or {},
    }


def resource_gaps(found: dict[str, dict[str, Any]]) -> list[str]:
    gaps = []
    for service, applied in found.items():
        if applied["cpus"] <= 0 or applied["memory_mb"] <= 0:
            gaps.append(f"limits:{service}")
        options = {key: applied["log_options"].get(key) for key in LOG_OPTIONS}
        if applied["log_driver"] != "json-file" or options != LOG_OPTIONS:
            gaps.append(f"logging:{service}")
    return gaps


def probe_stage(container: dict[str, Any], stage: str, password: str) -> int:
    """`edgegw health <stage>` in `container`, logging in as `stage` (its password)."""
    done = docker(
        "exec",
        "-e",
        f"EDGEGW_MQTT_PASSWORD={password}",
        container["Id"],
        "edgegw",
        "health",
        stage,
    )
    print(f"probe {stage}: exit {done.returncode}: {done.stdout.strip()}", file=sys.stderr)
    return done.returncode


def stopped_stage_probe(passwords: dict[str, str]) -> dict[str, int | None]:
    """The probe's exit for STOPPED_STAGE running, then stopped (0, then 1)."""
    containers = project_containers()
    if STOPPED_STAGE not in containers or PROBING_SERVICE not in containers:
        return {"running_exit": None, "stopped_exit": None}
    password = passwords[env_name(STOPPED_STAGE)]
    prober = containers[PROBING_SERVICE]
    running = probe_stage(prober, STOPPED_STAGE, password)
    docker("stop", containers[STOPPED_STAGE]["Id"])
    stopped = probe_stage(prober, STOPPED_STAGE, password)
    return {"running_exit": running, "stopped_exit": stopped}


class Watcher:
    """Notes the first time each awaited thing is seen, from the broker's start."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def note(self, what: str) -> None:
        with self._lock:
            self.seen.setdefault(what, round(time.monotonic() - self.started, 2))

    def on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        suffix = message.topic.removeprefix(f"{ROOT}/")
        kind, _, name = suffix.partition("/")
        if kind == "status" and message.payload == b"online" and name in STAGES:
            self.note(f"online:{name}")
        elif kind == "gas" and suffix.endswith("/average"):
            self.note("gas_average")
        elif kind in ("event", "alert"):
            body = orjson.loads(message.payload)
            label = body.get("kind") or (body.get("parts") or [{}])[0].get("kind", "?")
            self.note(f"{kind}:{label}")


def wanted() -> list[str]:
    return [
        *(f"online:{stage}" for stage in STAGES),
        *(f"healthy:{service}" for service in expected_services()),
        "gas_average",
        "event:object",
        "event:sound",
        "alert:object",
        "alert:sound",
        "tsdb_points",
        "cloud:alert",
        "cloud:snapshot",
    ]


def start_cloud(work: Path) -> tuple[CloudBroker, dict[str, str]]:
    """A cloud broker on this host, and the compose variables that point the bridge at it."""
    pki = TestPki.create(work / "pki", extra_names=(CLOUD_HOST,))
    secrets = work / "secrets"
    secrets.mkdir()
    for source, name in ((pki.ca, "ca.pem"), (pki.client_cert, "client.pem")):
        shutil.copy(source, secrets / name)
    shutil.copy(pki.client_key, secrets / "client.key")
    (secrets / "client.key").chmod(0o644)  # a throwaway key the container user must read
    cloud = CloudBroker(work / "cloud", pki, listen="0.0.0.0")
    cloud.start()
    env = {
        "EDGEGW_CLOUD_HOST": CLOUD_HOST,
        "EDGEGW_CLOUD_PORT": str(cloud.port),
        "EDGEGW_CLOUD_USERNAME": GATEWAY_USER,
        "EDGEGW_CLOUD_PASSWORD": cloud.passwords[GATEWAY_USER],
        "EDGEGW_CLOUD_SECRETS": str(secrets),
        "EDGEGW_CONFIRM_WITH_BRIDGE": "true",
    }
    return cloud, env


def tsdb_has_points(port: int) -> bool:
    series = f"http://127.0.0.1:{port}/api/v1/label/__name__/values"
    try:
        with urllib.request.urlopen(series, timeout=2) as answer:
            names = orjson.loads(answer.read())["data"]
    except (OSError, ValueError, KeyError):
        return False
    return "gas_reading_value" in names and "detections_objects" in names


def main() -> int:
    passwords = compose_passwords()
    broker_port, tsdb_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="edgegw-compose-check-") as scratch:
        cloud, cloud_env = start_cloud(Path(scratch))
        env = {
            "COMPOSE_PROJECT_NAME": PROJECT,
            "EDGEGW_BROKER_PORT": str(broker_port),
            "EDGEGW_TSDB_PORT": str(tsdb_port),
            **cloud_env,
        }
        try:
            return check(env, passwords, broker_port, tsdb_port, cloud)
        finally:
            cloud.stop()


def _under(prefix: str) -> Callable[[Seen], bool]:
    return lambda message: message.topic.startswith(prefix)


def note_health(watcher: Watcher) -> dict[str, dict[str, Any]]:
    containers = project_containers()
    for service, container in containers.items():
        if health_status(container) == "healthy":
            watcher.note(f"healthy:{service}")
    return containers


def check(
    env: dict[str, str],
    passwords: dict[str, str],
    broker_port: int,
    tsdb_port: int,
    cloud: CloudBroker,
) -> int:
    build_started = time.monotonic()
    compose(env, "--profile", "cloud", "build")
    up_started = time.monotonic()
    # Returns once the broker is healthy and every stage started (depends_on).
    compose(env, "--profile", "cloud", "up", "-d")
    started = time.monotonic()
    watcher = Watcher(started)
    health = Watcher(up_started)  # times from `up`: the broker's probe gates the stages
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("operator", passwords[env_name("operator")])
    client.on_message = watcher.on_message
    client.on_connect = lambda c, *_: c.subscribe(f"{ROOT}/#", qos=1)
    upstairs = CloudProbe(cloud)
    upstairs.subscribe(f"{ROOT}/#")
    try:
        deadline = started + TIMEOUT_S
        while True:
            try:
                client.connect("127.0.0.1", broker_port, keepalive=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        client.loop_start()
        polled = 0.0
        containers: dict[str, dict[str, Any]] = {}
        while (
            time.monotonic() < deadline and set(wanted()) - watcher.seen.keys() - health.seen.keys()
        ):
            if time.monotonic() - polled >= HEALTH_POLL_S:
                containers = note_health(health)
                polled = time.monotonic()
            if "tsdb_points" not in watcher.seen and tsdb_has_points(tsdb_port):
                watcher.note("tsdb_points")
            for kind in ("alert", "snapshot"):
                if upstairs.received(_under(f"{ROOT}/{kind}/")):
                    watcher.note(f"cloud:{kind}")
            time.sleep(0.5)
        client.loop_stop()
        containers = containers or project_containers()
        applied = {service: resources(c) for service, c in sorted(containers.items())}
        probe = stopped_stage_probe(passwords)
        missing = sorted(set(wanted()) - watcher.seen.keys() - health.seen.keys())
        missing += resource_gaps(applied)
        if probe != {"running_exit": 0, "stopped_exit": 1}:
            missing.append("stopped_stage_probe")
        healthy = {k.removeprefix("healthy:"): v for k, v in health.seen.items()}
        report = {
            "compose_check": {
                "build_s": round(up_started - build_started, 1),
                "up_s": round(started - up_started, 1),
                "first_seen_s": dict(sorted(watcher.seen.items(), key=lambda kv: kv[1])),
                "healthy_s": dict(sorted(healthy.items(), key=lambda kv: kv[1])),
                "containers": applied,
                "stopped_stage_probe": {"stage": STOPPED_STAGE, **probe},
                "missing": missing,
            }
        }
        print(orjson.dumps(report).decode())
        return 1 if missing else 0
    finally:
        client.disconnect()
        upstairs.close()
        compose(env, "--profile", "cloud", "down", "-v")


if __name__ == "__main__":
    sys.exit(main())
