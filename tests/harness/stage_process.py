"""A stage run as a real process, as `edgegw run <stage>` would run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parents[2]


class StartStage(Protocol):
    """The `stage` fixture: starts `edgegw run <name>` with extra environment."""

    def __call__(self, name: str, **env: str) -> StageProcess: ...


class StageProcess:
    def __init__(self, stage: str, env: dict[str, str], log_dir: Path) -> None:
        self.stage = stage
        self.log = log_dir / f"{stage}-{os.getpid()}-{id(self)}.log"
        module = "services." + stage.replace("-", "_")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self._process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            env=full_env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def pin(self, cpus: set[int]) -> None:
        """Run every thread of the stage on `cpus` only (threads it starts
        later inherit it): replicas on cores of their own, as on nodes."""
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), cpus)

    def terminate(self) -> None:
        self._process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self._process.send_signal(signal.SIGKILL)

    def wait(self, timeout_s: float) -> int:
        return self._process.wait(timeout=timeout_s)

    def poll(self) -> int | None:
        return self._process.poll()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
