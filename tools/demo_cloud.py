"""A second local Mosquitto playing the cloud, for `make demo`.

TLS with a throw-away CA made by `openssl` (server certificate for
127.0.0.1, a client certificate for the gateway), a password and an ACL for
the gateway's cloud account, persistence. `start()` returns the environment
cloud-bridge needs; `report()` says what reached the cloud and what it cost.

    cloud = DemoCloud(STATE / "cloud", GATEWAY)
    STAGES["cloud-bridge"] = {**cloud.start(), "EDGEGW_SPOOL_PATH": str(STATE / "spool.db")}
    ...
    print(cloud.report()); cloud.stop()
"""

from __future__ import annotations

from pathlib import Path

from schemas.topic_spec import publish_bytes
from tests.integration.cloud.cloud_broker import CloudBroker, TestPki
from tests.integration.cloud.cloud_probe import CloudProbe


class DemoCloud:
    def __init__(self, directory: Path, gateway_id: str) -> None:
        self._directory = directory
        self._root = f"edgegw/{gateway_id}"
        self._broker: CloudBroker | None = None
        self._watcher: CloudProbe | None = None

    def start(self) -> dict[str, str]:
        """Start the cloud broker and a watcher; the env cloud-bridge needs."""
        pki = TestPki.create(self._directory / "pki")
        self._broker = CloudBroker(self._directory / "broker", pki)
        self._broker.start()
        self._watcher = CloudProbe(self._broker)
        self._watcher.subscribe(f"{self._root}/#")
        return self._broker.bridge_env()

    @property
    def address(self) -> str:
        if self._broker is None:
            return "not started"
        return f"{self._broker.host}:{self._broker.port}"

    def report(self) -> str:
        if self._watcher is None:
            return "cloud: not started"
        counts: dict[str, list[int]] = {}
        for message in self._watcher.received():
            kind = message.topic[len(self._root) + 1 :].split("/")[0]
            size = publish_bytes(message.topic, message.payload)  # as the bridge charges it
            entry = counts.setdefault(kind, [0, 0])
            entry[0] += 1
            entry[1] += size
        if not counts:
            return "cloud: nothing arrived"
        parts = [f"{kind} {n} msgs/{size} B" for kind, (n, size) in sorted(counts.items())]
        total = sum(size for _, size in counts.values())
        return f"cloud received {total} bytes: " + ", ".join(parts)

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self._broker is not None:
            self._broker.stop()
