"""A local image registry (Debian's `docker-registry`, registry API v2) on a
loopback port, storage in a folder; the Docker engine pulls from 127.0.0.1
without TLS (loopback registries are insecure-allowed by default).

    python -m tools.local_registry --dir var/registry --port 5000   # `make registry`

starts it in the background unless one already answers there, and prints its
address. The test harness uses `LocalRegistry` directly (a free port, tmp).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

CONFIG = """version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {host}:{port}
"""


def registry_binary() -> str:
    found = shutil.which("docker-registry")
    if found is None:
        raise RuntimeError("docker-registry is not installed: run `make setup`")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(address: str, timeout_s: float = 1.0) -> bool:
    """Whether a registry API v2 answers at `address` (host:port)."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=timeout_s) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class LocalRegistry:
    def __init__(self, directory: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.directory = directory
        self.host = host
        self.port = port or free_port()
        self.config = directory / "config.yml"
        self.log = directory / "registry.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, *, detach: bool = False, timeout_s: float = 15.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        self.config.write_text(CONFIG.format(data=data, host=self.host, port=self.port))
        self._process = subprocess.Popen(
            [registry_binary(), "serve", str(self.config)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=detach,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log.read_text()[-2000:]}")
            if answers(self.address, 0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.address} in {timeout_s} s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.local_registry")
    parser.add_argument("--dir", type=Path, default=Path("var/registry"))
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    registry = LocalRegistry(args.dir.resolve(), args.port)
    if not answers(registry.address):
        registry.start(detach=True)
    print(registry.address)


if __name__ == "__main__":
    main()
