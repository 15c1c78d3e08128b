"""`make demo`: Mosquitto with the project's config, the stages as local
processes, and a live view of averages and events. Ctrl-C stops it all.

    python tools/demo.py [--port 1883] [--duration SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from broker.generate import write_local  # noqa: E402
from schemas.alerts import Alert, UplinkUsage  # noqa: E402
from schemas.gas import GasAverage  # noqa: E402
from schemas.topics import ALERT, EVENT, GAS_AVERAGE_RESULT, OPERATOR, UPLINK_USAGE  # noqa: E402
from services.cli.session import with_door  # noqa: E402
from services.cli.watch import describe_event  # noqa: E402
from services.common.door import MqttDoor, Received  # noqa: E402
from services.common.settings import StageSettings  # noqa: E402
from tools.demo_cloud import DemoCloud  # noqa: E402

GATEWAY = "demo"
STATE = REPO / "var"
# Each stage with the environment the demo gives it (compose sets the same).
STAGES: dict[str, dict[str, str]] = {
    "gas-average": {"EDGEGW_TIME_WINDOW_S": "5", "EDGEGW_PUBLISH_INTERVAL_S": "2"},
    "gas-replay": {
        "EDGEGW_FIRST_LEAK_AFTER_S": "5",
        "EDGEGW_LEAK_RATE_PER_HOUR": "4",
        "EDGEGW_SEED": "3",
    },
    "camera-capture": {
        "EDGEGW_CAMERA": "lobby",
        "EDGEGW_SOURCE": str(REPO / ".cache/media/vtest.avi"),
        "EDGEGW_FPS": "10",
    },
    "object-detector": {"EDGEGW_THREADS": "1"},
    "object-tracker": {},
    "audio-capture": {
        "EDGEGW_MIC": "hall",
        "EDGEGW_AUDIO_FILES": ",".join(
            str(REPO / ".cache/media/audio" / name)
            for name in ("Front_Center.wav", "alarm-clock-elapsed.wav", "phone-incoming-call.wav")
        ),
        "EDGEGW_SILENCE_BETWEEN_S": "3",
    },
    "audio-classifier": {"EDGEGW_MODEL_DIR": str(REPO / ".cache/models/yamnet")},
    "bandwidth-allocator": {},
}


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def pick_port(wanted: int, user: str = "the demo broker") -> int:
    """`wanted` if free; else (or for 0) a free port."""
    if wanted and port_free(wanted):
        return wanted
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    if wanted:
        print(f"port {wanted} is taken; {user} listens on {port}")
    return port


def start_broker(port: int) -> subprocess.Popen[bytes]:
    directory = STATE / "broker"
    write_local(directory, port)
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    log = (STATE / "mosquitto.log").open("ab")
    process = subprocess.Popen(
        [binary, "-c", str(directory / "mosquitto.conf")], stdout=log, stderr=log
    )
    for _ in range(100):
        if not port_free(port):
            return process
        time.sleep(0.05)
    raise SystemExit(f"mosquitto did not start; see {STATE / 'mosquitto.log'}")


def start_stages(
    port: int, passwords: dict[str, str], stages: dict[str, dict[str, str]]
) -> list[subprocess.Popen[bytes]]:
    processes = []
    for stage, extra in stages.items():
        env = {
            **os.environ,
            "EDGEGW_MQTT_HOST": "127.0.0.1",
            "EDGEGW_MQTT_PORT": str(port),
            "EDGEGW_MQTT_USERNAME": stage,
            "EDGEGW_MQTT_PASSWORD": passwords[stage],
            "EDGEGW_GATEWAY_ID": GATEWAY,
            "EDGEGW_HEALTH_INTERVAL_S": "5",
            **extra,
        }
        log = (STATE / f"{stage}.log").open("ab")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "services." + stage.replace("-", "_")],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=log,
            )
        )
    return processes


async def live_view(settings: StageSettings, duration: float | None) -> None:
    root = f"edgegw/{GATEWAY}"

    async def on_average(message: Received[GasAverage]) -> None:
        a = message.payload
        print(
            f"  avg  {a.sensor:12} {a.gas:8} {a.time_average:9.1f} ppm over {a.time_window_s:.0f} s"
            f"  (last {a.last_value:.1f})",
            flush=True,
        )

    async def on_event(message: Received[object]) -> None:
        print("EVENT " + describe_event(message.topic, orjson.loads(message.raw)), flush=True)

    async def on_alert(message: Received[Alert]) -> None:
        a = message.payload
        parts = ", ".join(f"{p.kind}:{p.label}@{p.source}" for p in a.parts)
        print(f"ALERT {a.type.upper():6} {a.severity:8} {a.label}  [{parts}]", flush=True)

    async def on_usage(message: Received[UplinkUsage | None]) -> None:
        u = message.payload
        if u is None:
            return
        sent = sum(u.bytes_by_class.values())
        print(
            f"UPLINK {sent} B to the cloud so far {dict(u.bytes_by_class)}; "
            f"{u.used_kbps:.2f} of {u.budget_kbps} kbit/s; spool {u.spool_entries} msgs",
            flush=True,
        )

    def prepare(door: MqttDoor) -> None:
        door.subscribe(GAS_AVERAGE_RESULT, on_average)
        door.subscribe(EVENT, on_event)
        door.subscribe(ALERT, on_alert)
        door.subscribe(UPLINK_USAGE, on_usage)

    async def body(door: MqttDoor) -> None:
        print(f"watching {root} — Ctrl-C stops everything", flush=True)
        await (asyncio.sleep(duration) if duration else asyncio.Event().wait())

    await with_door(settings, root, prepare, body)


# A stage stops within twice its shutdown grace (2 x 5 s), even with the broker gone.
STAGE_STOP_S = 12.0


def stop_all(
    stages: list[subprocess.Popen[bytes]], broker: subprocess.Popen[bytes], interrupted: bool
) -> None:
    # Ctrl-C in a terminal reaches every stage (one process group): they are
    # already stopping, and a SIGTERM landing after a stage has put its signal
    # handlers away would kill it mid-exit. So they get their time first.
    deadline = time.monotonic() + (STAGE_STOP_S if interrupted else 0.0)
    for process in stages:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for process in stages:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in stages:
        try:
            code = process.wait(timeout=STAGE_STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        module = str(list(process.args)[-1])  # type: ignore[arg-type]
        print(f"stopped {module} (exit {code})")
    broker.terminate()
    broker.wait(timeout=10)
    print("stopped mosquitto")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    parser.add_argument("--web-port", type=int, default=8080, help="the operator's web page")
    args = parser.parse_args()
    STATE.mkdir(exist_ok=True)
    port = pick_port(args.port)
    broker = start_broker(port)
    passwords = (STATE / "broker" / "secrets.env").read_text().splitlines()
    secrets = dict(line.split("=", 1) for line in passwords if "=" in line)
    cloud = DemoCloud(STATE / "cloud", GATEWAY)
    web_port = pick_port(args.web_port, "the web page")
    to_start = {
        **STAGES,
        "alert-forwarder": {},
        "cloud-bridge": {**cloud.start(), "EDGEGW_SPOOL_PATH": str(STATE / "spool.db")},
        # The page's login is the broker's generated operator password.
        "web": {"EDGEGW_WEB_PORT": str(web_port), "EDGEGW_WEB_PASSWORD": secrets[OPERATOR]},
    }
    stages = start_stages(port, secrets, to_start)
    settings = StageSettings(
        mqtt_port=port,
        mqtt_username=OPERATOR,
        mqtt_password=secrets[OPERATOR],
        gateway_id=GATEWAY,
    )
    print(f"mosquitto on 127.0.0.1:{port}; stages: {', '.join(to_start)}; logs in {STATE}/")
    print(
        f"a second mosquitto plays the cloud ({cloud.address}); the bridge uploads to it over TLS"
    )
    print(f"try: EDGEGW_MQTT_PORT={port} .venv/bin/edgegw status --gateway {GATEWAY}")
    print(
        f"web page: http://127.0.0.1:{web_port}/ "
        f"(log in with the operator password, `{OPERATOR}=` in {STATE / 'broker/secrets.env'})"
    )
    interrupted = False
    try:
        asyncio.run(live_view(settings, args.duration))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop_all(stages, broker, interrupted)
        print(cloud.report())
        cloud.stop()


if __name__ == "__main__":
    main()
