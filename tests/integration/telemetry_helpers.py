"""A real time-series server for tests and benchmarks: Debian's `victoria-metrics`.

VictoriaMetrics accepts influxdb-client's v2 writes on /api/v2/write (a line
`m,tag=v field=1` becomes the series `m_field{tag="v"}`) and gives points back
on /api/v1/export. It is started on a free port with its own storage folder,
and can be stopped and started again on the same port and data, which is how
the tests take "the server" away from the recorder and give it back.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from tests.harness.broker import free_port, stop_process

HTTP_TIMEOUT_S = 5.0


def victoria_metrics_binary() -> str:
    found = shutil.which("victoria-metrics")
    if found is None:
        raise RuntimeError(
            "victoria-metrics is not installed: apt-get install victoria-metrics (Debian)"
        )
    return found


class VictoriaMetrics:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "victoria-metrics.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> None:
        command = [
            victoria_metrics_binary(),
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.directory / 'data'}",
            "-retentionPeriod=1d",
            "-loggerLevel=WARN",
        ]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=0.5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"victoria-metrics did not answer on {self.port} within {timeout_s} s")

    def stop(self) -> None:
        """SIGTERM: it flushes what it holds to disk and exits."""
        if self._process is None:
            return
        stop_process(self._process, grace_s=15)
        self._process = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _get(self, path: str, params: dict[str, str] | None = None) -> bytes:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=HTTP_TIMEOUT_S) as answer:
            body: bytes = answer.read()
            return body

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every series matching a selector (e.g. `{gateway="gw1"}`), with its raw samples."""
        # Rows become searchable after an in-memory buffer is flushed (~1 s);
        # the test endpoint flushes now.
        self._get("/internal/force_flush")
        # Up to an hour ahead: a point stamped a little in the future counts too.
        window = {"start": "0", "end": str(int(time.time()) + 3600)}
        body = self._get("/api/v1/export", {"match[]": match, **window})
        return [orjson.loads(line) for line in body.splitlines() if line.strip()]

    def samples(self, match: str) -> int:
        return sum(len(series["values"]) for series in self.export(match))

    def wait_for_samples(self, match: str, count: int, timeout_s: float = 15.0) -> int:
        """Wait until at least `count` samples match; returns how many there are."""
        deadline = time.monotonic() + timeout_s
        found = 0
        while time.monotonic() < deadline:
            found = self.samples(match)
            if found >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{match}: {found} samples, wanted {count} within {timeout_s} s")
