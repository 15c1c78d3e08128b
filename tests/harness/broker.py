"""A real Mosquitto with the project's broker config, on a free port."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from broker import dynsec
from broker.generate import write_local
from schemas.topics import STAGES
from services.common.settings import StageSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM (a server flushes what it holds), SIGKILL past `grace_s`."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise RuntimeError("mosquitto is not installed: run `make setup`")
    return found


def start_mosquitto(
    conf: Path, log: Path, host: str, port: int, timeout_s: float = 10.0
) -> subprocess.Popen[bytes]:
    """Start Mosquitto on `conf` and return once it accepts connections."""
    process = subprocess.Popen(
        [mosquitto_binary(), "-c", str(conf)], stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto ({conf.name}) exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"mosquitto ({conf.name}) did not listen on {port} within {timeout_s} s")


class MosquittoBroker:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.passwords = write_local(directory, self.port)
        self.conf = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        self._process = start_mosquitto(self.conf, self.log, self.host, self.port, timeout_s)

    def kill(self) -> None:
        """SIGKILL: no chance to save anything the autosave has not written."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
            self._process = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def env_for(self, user: str, gateway_id: str, instance: str = "0") -> dict[str, str]:
        """Environment a stage process needs to reach this broker as `user`.

        A stage gets an identity of its own per gateway and instance (the
        stage's role, bound to its client id), created at run time as the
        deployer will: tests share this broker, and a stage must not resume
        another test's persistent session. The same gateway and instance get
        the same identity again, so a restarted stage resumes its session.
        """
        username = user
        if user in STAGES:
            username = self.identity(user, f"{gateway_id}.{instance}")
        return {
            "EDGEGW_MQTT_HOST": self.host,
            "EDGEGW_MQTT_PORT": str(self.port),
            "EDGEGW_MQTT_USERNAME": username,
            "EDGEGW_MQTT_PASSWORD": self.passwords[username],
            "EDGEGW_GATEWAY_ID": gateway_id,
        }

    def door_settings(self, user: str, gateway_id: str, **overrides: Any) -> StageSettings:
        """Settings for a door of the test's own, as `user` with its password."""
        return StageSettings(
            mqtt_host=self.host,
            mqtt_port=self.port,
            mqtt_username=user,
            mqtt_password=SecretStr(self.passwords[user]),
            gateway_id=gateway_id,
            **overrides,
        )

    def identity(self, role: str, key: str | None = None) -> str:
        """The username of an identity `<role>.<key>` with `role`'s grants,
        bound to a client id equal to it; created on first use."""
        username = f"{role}.{key or uuid.uuid4().hex[:10]}"
        if username not in self.passwords:
            password = secrets.token_urlsafe(12)
            self.control(dynsec.create_client_commands(username, password, role))
            self.passwords[username] = password
        return username

    def revoke(self, username: str, role: str) -> None:
        """Delete an identity made by `identity()`; the broker disconnects it."""
        self.control(dynsec.delete_client_commands(username, role))
        self.passwords.pop(username, None)

    def control(
        self, commands: dict[str, object], timeout_s: float = 10.0
    ) -> list[dict[str, object]]:
        """Send dynamic security commands as the dynsec admin; their responses,
        each checked to carry no error."""
        answered = threading.Event()
        responses: list[dict[str, object]] = []

        def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
            responses.extend(orjson.loads(message.payload)["responses"])
            answered.set()

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=dynsec.ADMIN, protocol=mqtt.MQTTv5
        )
        client.username_pw_set(dynsec.ADMIN, self.passwords[dynsec.ADMIN])
        client.on_message = on_message
        client.connect(self.host, self.port, keepalive=30)
        client.loop_start()
        try:
            client.subscribe(f"{dynsec.CONTROL_TOPIC}/response", qos=1)
            client.publish(dynsec.CONTROL_TOPIC, orjson.dumps(commands), qos=1)
            if not answered.wait(timeout_s):
                raise TimeoutError(f"no dynamic security response in {timeout_s} s")
        finally:
            client.disconnect()
            client.loop_stop()
        failed = [response for response in responses if "error" in response]
        if failed:
            raise RuntimeError(f"dynamic security refused: {failed}")
        return responses


@contextlib.contextmanager
def running_broker(folder: Path) -> Iterator[MosquittoBroker]:
    """The body of every broker fixture: a broker in `folder`, started, and
    stopped when the block ends (resumed first: a test may leave it paused)."""
    server = MosquittoBroker(folder)
    server.start()
    try:
        yield server
    finally:
        server.resume()
        server.stop()
