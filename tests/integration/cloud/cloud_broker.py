"""A second Mosquitto that plays the cloud: TLS only, client certificates
required, a password and an ACL for the gateway's cloud user, persistence.

The certificates come from a throw-away PKI made with the `openssl` CLI: a
test CA, a server certificate for 127.0.0.1/localhost, a client certificate,
and a second, unrelated CA that nobody should trust.
"""

from __future__ import annotations

import getpass
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.harness.broker import free_port, start_mosquitto, stop_process

GATEWAY_USER = "edge-gateway"  # the gateway's account on the cloud broker
CLOUD_OPERATOR = "cloud-operator"  # the cloud-side consumer and config author


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
        cwd=directory,
    )  # fmt: skip
    return key, cert


def _issue(directory: Path, ca: tuple[Path, Path], name: str, extensions: str) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
    ext_file = directory / f"{name}.ext"
    ext_file.write_text(extensions)
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr), cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey", str(ca[0]),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext_file), "-out", str(cert),
        cwd=directory,
    )  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class TestPki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path  # a CA that signed nothing we use: trusting it must fail

    @classmethod
    def create(cls, directory: Path, extra_names: tuple[str, ...] = ()) -> TestPki:
        """`extra_names`: more DNS names the server certificate is valid for
        (e.g. the name containers reach the host by)."""
        directory.mkdir(parents=True, exist_ok=True)
        ca = _make_ca(directory, "edgegw-test-ca")
        names = ",".join(["IP:127.0.0.1", "DNS:localhost", *(f"DNS:{n}" for n in extra_names)])
        server = _issue(
            directory, ca, "cloud-server",
            f"subjectAltName={names}\nextendedKeyUsage=serverAuth\n",
        )  # fmt: skip
        client = _issue(directory, ca, "gateway-client", "extendedKeyUsage=clientAuth\n")
        _, rogue = _make_ca(directory, "rogue-ca")
        return cls(ca[1], server[0], server[1], client[0], client[1], rogue)


ACL = f"""user {GATEWAY_USER}
topic write edgegw/+/alert/#
topic write edgegw/+/summary/#
topic write edgegw/+/status/#
topic write edgegw/+/deadletter/#
topic write edgegw/+/snapshot/#
topic read edgegw/+/config/#

user {CLOUD_OPERATOR}
topic readwrite edgegw/#
"""


class CloudBroker:
    def __init__(
        self, directory: Path, pki: TestPki, port: int | None = None, listen: str = "127.0.0.1"
    ) -> None:
        self.directory = directory
        self.pki = pki
        self.port = port or free_port()
        self.host = "127.0.0.1"  # where clients on this machine reach it
        self.passwords = {GATEWAY_USER: secrets.token_urlsafe(12), CLOUD_OPERATOR: "op"}
        self.log = directory / "cloud-mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "data").mkdir(exist_ok=True)
        (directory / "acl").write_text(ACL)
        passwd = directory / "passwd"
        passwd.write_text("".join(f"{u}:{p}\n" for u, p in self.passwords.items()))
        tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        subprocess.run([tool, "-U", str(passwd)], check=True, timeout=60)
        self.conf = directory / "cloud-mosquitto.conf"
        self.conf.write_text(
            "per_listener_settings false\n"
            f"listener {self.port} {listen}\n"
            f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
            "require_certificate true\nuse_identity_as_username false\n"
            "allow_anonymous false\n"
            f"password_file {passwd}\nacl_file {directory / 'acl'}\n"
            f"persistence true\npersistence_location {directory / 'data'}/\n"
            "autosave_interval 1\npersistent_client_expiration 1d\n"
            "max_queued_messages 200000\nmax_inflight_messages 100\n"
            f"user {getpass.getuser()}\nlog_dest stdout\n"
            "log_type error\nlog_type warning\nlog_type notice\nconnection_messages true\n"
        )

    def start(self, timeout_s: float = 10.0) -> None:
        self._process = start_mosquitto(self.conf, self.log, self.host, self.port, timeout_s)

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its persistence file on the way out."""
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    def bridge_env(self, *, ca: Path | None = None) -> dict[str, str]:
        """What cloud-bridge needs to reach this broker as the gateway."""
        return {
            "EDGEGW_CLOUD_MQTT_HOST": self.host,
            "EDGEGW_CLOUD_MQTT_PORT": str(self.port),
            "EDGEGW_CLOUD_MQTT_USERNAME": GATEWAY_USER,
            "EDGEGW_CLOUD_MQTT_PASSWORD": self.passwords[GATEWAY_USER],
            "EDGEGW_CLOUD_MQTT_TLS_CA": str(ca or self.pki.ca),
            "EDGEGW_CLOUD_MQTT_TLS_CERT": str(self.pki.client_cert),
            "EDGEGW_CLOUD_MQTT_TLS_KEY": str(self.pki.client_key),
            "EDGEGW_CLOUD_RECONNECT_MAX_S": "1",
        }
