"""`memory`: idle RSS of every stage of the demo stack, measured in one run.

The whole stack runs as processes the way `make demo` runs it (tools/demo.py):
the project's Mosquitto, a second Mosquitto playing the cloud for
cloud-bridge, a real InfluxDB v2 write API (VictoriaMetrics) for
telemetry-recorder, every stage with its real models and media from .cache.
After `--idle-s` of steady running each stage's VmRSS is read from
/proc/<pid>/status (PSS from smaps_rollup as extra information). Brokers and
the time-series server are not counted.

The same-run baseline is the RSS of a bare interpreter (`import asyncio`), of
one that imports only what every stage needs (aiomqtt, pydantic, pydantic-
settings) and of that plus each heavy library a stage needs (numpy, cv2,
onnxruntime, LiteRT), so the figures compare across machines and each stage's
floor is on record next to it: `stack_floor_mb` sums each stage's floor (its
libraries imported, nothing run), `stack_vs_floor` is the stack over it.

    python -m tests.bench.memory_bench [--idle-s 30]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson

from tests.harness.broker import MosquittoBroker
from tests.harness.stage_process import StageProcess
from tests.integration.telemetry_helpers import VictoriaMetrics
from tools.demo import GATEWAY, STAGES
from tools.demo_cloud import DemoCloud

MB = 1024 * 1024
LIGHT_GOAL_MB = 45.0
CAPTURE_GOAL_MB = 70.0
STACK_GOAL_MB = 550.0
GOALS_MB: dict[str, float] = {
    "gas-replay": LIGHT_GOAL_MB,
    "gas-average": LIGHT_GOAL_MB,
    "alert-forwarder": LIGHT_GOAL_MB,
    "cloud-bridge": LIGHT_GOAL_MB,
    "bandwidth-allocator": LIGHT_GOAL_MB,
    "telemetry-recorder": LIGHT_GOAL_MB,
    "camera-capture": CAPTURE_GOAL_MB,
    "audio-capture": CAPTURE_GOAL_MB,
}
# `import pydantic` alone is lazy: the baseline loads BaseModel, as every stage does.
STAGE_FLOOR = "import asyncio, aiomqtt, orjson; from pydantic import BaseModel"
BASELINES: dict[str, str] = {
    "python_asyncio": "import asyncio",
    "python_aiomqtt_pydantic": "import asyncio, aiomqtt; from pydantic import BaseModel",
    # What a stage cannot go below with the libraries it needs (evidence for the floors):
    "python_stage_floor": STAGE_FLOOR,
    "python_stage_floor_numpy": f"{STAGE_FLOOR}; import numpy",
    "python_stage_floor_cv2": f"{STAGE_FLOOR}; import cv2",
    "python_stage_floor_onnxruntime": f"{STAGE_FLOOR}; import onnxruntime",
    "python_stage_floor_litert_cv2": f"{STAGE_FLOOR}; import cv2, ai_edge_litert.interpreter",
    "python_stage_floor_litert_pil": f"{STAGE_FLOOR}; import PIL.Image, ai_edge_litert.interpreter",
}


# Each stage's floor: the baseline that imports the libraries it cannot run
# without (its models' runtimes, OpenCV for video capture, Pillow for the
# detector's JPEGs, NumPy for sound).
STAGE_FLOORS: dict[str, str] = {
    "audio-capture": "python_stage_floor_numpy",
    "camera-capture": "python_stage_floor_cv2",
    "object-detector": "python_stage_floor_litert_pil",
    "audio-classifier": "python_stage_floor_onnxruntime",
}


class RunningStage(Protocol):
    """What measure() needs of a started stage: StageProcess, or a container
    (tests/bench/container_overhead.py)."""

    @property
    def pid(self) -> int: ...
    def poll(self) -> int | None: ...
    def output(self) -> str: ...
    def terminate(self) -> None: ...
    def wait(self, timeout_s: float) -> int: ...
    def stop(self) -> None: ...


StartStage = Callable[[str, dict[str, str], Path], RunningStage]
ReadMemory = Callable[[RunningStage], dict[str, float]]


def proc_kb(pid: int, file: str, field: str) -> int:
    for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/{file}")


def memory_of(pid: int) -> dict[str, float]:
    return {
        "rss_mb": round(proc_kb(pid, "status", "VmRSS") / 1024, 1),
        "pss_mb": round(proc_kb(pid, "smaps_rollup", "Pss") / 1024, 1),
    }


def baseline_mb(code: str) -> float:
    """RSS of an interpreter that ran `code` and then reads its own status."""
    probe = (
        f"{code}\nfor line in open('/proc/self/status'):\n"
        "    if line.startswith('VmRSS:'): print(line.split()[1])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, check=True, timeout=60
    )
    return round(int(done.stdout.split()[-1]) / 1024, 1)


def process_memory(stage: RunningStage) -> dict[str, float]:
    return memory_of(stage.pid)


def measure(
    directory: Path,
    idle_s: float,
    start: StartStage = StageProcess,
    read: ReadMemory = process_memory,
) -> dict[str, dict[str, float]]:
    """Every stage started with `start` (a bare process by default), its
    memory after `idle_s` as `read` finds it."""
    broker = MosquittoBroker(directory / "broker")
    broker.start()
    cloud = DemoCloud(directory / "cloud", GATEWAY)
    (directory / "victoria").mkdir()
    victoria = VictoriaMetrics(directory / "victoria")
    processes: dict[str, RunningStage] = {}
    try:
        victoria.start()
        stages = {
            **STAGES,
            "alert-forwarder": {},
            "cloud-bridge": {**cloud.start(), "EDGEGW_SPOOL_PATH": str(directory / "spool.db")},
            "telemetry-recorder": {"EDGEGW_INFLUX_URL": victoria.url},
        }
        for stage, extra in stages.items():
            env = {**broker.env_for(stage, GATEWAY), "EDGEGW_HEALTH_INTERVAL_S": "5", **extra}
            processes[stage] = start(stage, env, directory)
        time.sleep(idle_s)
        dead = {name: p.output()[-1500:] for name, p in processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"stages exited before the measurement: {dead}")
        return {name: read(p) for name, p in processes.items()}
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout_s=15)
            except subprocess.TimeoutExpired:
                process.stop()
        cloud.stop()
        victoria.stop()
        broker.stop()


def floor_of(stage: str, baselines: dict[str, float]) -> float:
    return baselines[STAGE_FLOORS.get(stage, "python_stage_floor")]


def report(stages: dict[str, dict[str, float]], idle_s: float) -> dict[str, Any]:
    baselines = {name: baseline_mb(code) for name, code in BASELINES.items()}
    floor = baselines["python_stage_floor"]
    result: dict[str, Any] = {"idle_s": idle_s}
    stack = round(sum(m["rss_mb"] for m in stages.values()), 1)
    result["stack_mb"] = stack
    result["stack_goal_mb"] = STACK_GOAL_MB
    result["stack_meets_goal"] = stack <= STACK_GOAL_MB
    result["stack_pss_mb"] = round(sum(m["pss_mb"] for m in stages.values()), 1)
    details: dict[str, Any] = {}
    for name, memory in sorted(stages.items()):
        result[f"{name}_mb"] = memory["rss_mb"]
        goal = GOALS_MB.get(name)
        details[name] = {
            **memory,
            "goal_mb": goal,
            "meets_goal": None if goal is None else memory["rss_mb"] <= goal,
            "above_baseline_mb": round(memory["rss_mb"] - floor, 1),
            "floor_mb": floor_of(name, baselines),
            "above_floor_mb": round(memory["rss_mb"] - floor_of(name, baselines), 1),
        }
    result["stages"] = details
    result["baseline_mb"] = baselines
    result["stack_vs_baseline"] = round(stack / (floor * len(stages)), 2)
    # What the same stages weigh with nothing but their libraries imported.
    stack_floor = round(sum(floor_of(name, baselines) for name in stages), 1)
    result["stack_floor_mb"] = stack_floor
    result["stack_vs_floor"] = round(stack / stack_floor, 3)
    result["goals_met"] = result["stack_meets_goal"] and all(
        d["meets_goal"] is not False for d in details.values()
    )
    return {"memory": result}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle-s", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgegw-memory-") as directory:
        stages = measure(Path(directory), args.idle_s)
    sys.stdout.write(orjson.dumps(report(stages, args.idle_s), option=orjson.OPT_INDENT_2).decode())
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
