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
camera snapshots must arrive. Prints one JSON line with the times, tears the
stack down (volumes too) and exits non-zero naming what never came.
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

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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
CLOUD_HOST = "host.docker.internal"  # compose maps it to the host for cloud-bridge
TIMEOUT_S = 180.0


def compose(env: dict[str, str], *args: str) -> None:
    script = str(REPO / "tools" / "compose.sh")
    subprocess.run(["bash", script, *args], check=True, cwd=REPO, env={**os.environ, **env})


def operator_password() -> str:
    env_file = REPO / "compose" / ".env"
    # Passwords for every user (kept when the file exists): `make compose-env`.
    generate = [sys.executable, "-m", "broker.generate", "compose-env", "--out", str(env_file)]
    subprocess.run(generate, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "EDGEGW_PASSWORD_OPERATOR":
            return value
    raise SystemExit(f"{env_file} has no operator password")


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
    password = operator_password()
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
            return check(env, password, broker_port, tsdb_port, cloud)
        finally:
            cloud.stop()


def _under(prefix: str) -> Callable[[Seen], bool]:
    return lambda message: message.topic.startswith(prefix)


def check(
    env: dict[str, str], password: str, broker_port: int, tsdb_port: int, cloud: CloudBroker
) -> int:
    build_started = time.monotonic()
    compose(env, "--profile", "cloud", "up", "-d", "--build")
    started = time.monotonic()
    watcher = Watcher(started)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("operator", password)
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
        while time.monotonic() < deadline and set(wanted()) - watcher.seen.keys():
            if "tsdb_points" not in watcher.seen and tsdb_has_points(tsdb_port):
                watcher.note("tsdb_points")
            for kind in ("alert", "snapshot"):
                if upstairs.received(_under(f"{ROOT}/{kind}/")):
                    watcher.note(f"cloud:{kind}")
            time.sleep(0.5)
        client.loop_stop()
        missing = sorted(set(wanted()) - watcher.seen.keys())
        report = {
            "compose_check": {
                "up_s": round(started - build_started, 1),
                "first_seen_s": dict(sorted(watcher.seen.items(), key=lambda kv: kv[1])),
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
