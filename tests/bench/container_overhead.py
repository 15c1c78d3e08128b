"""`container_overhead`: what running a stage in its container costs, against
the same stage as a bare process, in one run (seed 000's headline measure).

- ratio: object-detector's fps in the edgegw-stage image (host network, the
  compose file's CPU and memory limits) over the same stage as a bare process
  (`python -m services.object_detector`, this checkout's venv), one at a time
  behind one real Mosquitto, offered frames at 2x the interpreter's fps as in
  tests/bench/detector_bench.py (one interpreter thread, 384 px JPEG).
  Container and bare alternate for `--rounds` rounds (the order flips each
  round); ratio is total detections in containers over total bare, with each
  round's ratio and their median beside it. Goal >= 0.95.
- memory: the idle stack of tests/bench/memory_bench.py, once as bare
  processes and once as containers (same servers, same environment; media and
  models from the image). Both sides are VmRSS of the stage's process from
  /proc (the container's main process seen from the host: directly
  comparable); `cgroup_mb` is the container's cgroup memory as `docker stats`
  counts it (usage minus inactive file cache), which also holds the page
  cache the stage touched.

The image is built first (tools/compose.sh build object-detector: the layer
cache makes it quick once built).

    python -m tests.bench.container_overhead [--rounds 6] [--idle-s 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import yaml

from services.inference import load_model
from services.media.jpeg_encode import resize_to_fit
from services.object_detector.settings import MODELS
from services.object_detector.ssd import SSDDetector, load_labels
from tests.bench import detector_bench as bench
from tests.bench.memory_bench import RunningStage, measure, memory_of
from tests.harness.broker import MosquittoBroker
from tests.harness.probe import Probe
from tests.harness.stage_process import StageProcess

REPO = Path(__file__).resolve().parents[2]
IMAGE = "edgegw-stage"
COMPOSE_FILE = REPO / "compose" / "docker-compose.yml"
IMAGE_CACHE = "/opt/edgegw/.cache"  # where compose/stage.Dockerfile puts models and media
DETECTOR = "object-detector"
MODEL, LABELS = "mobilenet_ssd_v2_coco_quant_postprocess.tflite", "coco_labels.txt"
GOAL_RATIO = 0.95
MB = 1024 * 1024


def docker(*args: str, timeout_s: float = 120.0) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker {args[0]}: {done.stderr.strip()[-1500:]}")
    return done.stdout


def compose_limits(service: str) -> list[str]:
    """`docker run` flags for the compose file's deploy limits of `service`."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    limits = services[service].get("deploy", {}).get("resources", {}).get("limits", {})
    flags = []
    if "cpus" in limits:
        flags += ["--cpus", str(limits["cpus"])]
    if "memory" in limits:
        flags += ["--memory", str(limits["memory"])]
    return flags


def in_image(env: dict[str, str]) -> dict[str, str]:
    """The same environment with this checkout's media and models swapped for
    the image's copies; the detector's model named (its default is a path
    relative to the package)."""
    local_cache = str(REPO / ".cache")
    found = {key: value.replace(local_cache, IMAGE_CACHE) for key, value in env.items()}
    found.setdefault("EDGEGW_MODEL_PATH", f"{IMAGE_CACHE}/models/{MODEL}")
    found.setdefault("EDGEGW_LABELS_PATH", f"{IMAGE_CACHE}/models/{LABELS}")
    return found


class StageContainer:
    """A stage in the stage image on the host network (it reaches the bench's
    broker on 127.0.0.1), with StageProcess's interface. It runs as this
    user, so it reads the bench's files (PKI, spool) mounted at their paths."""

    def __init__(self, stage: str, env: dict[str, str], directory: Path, label: str) -> None:
        self.stage = stage
        args = ["run", "-d", "--network", "host", "--label", label]
        args += ["--user", f"{os.getuid()}:{os.getgid()}", "-v", f"{directory}:{directory}"]
        args += compose_limits(stage)
        for key, value in in_image(env).items():
            args += ["-e", f"{key}={value}"]
        self.id = docker(*args, IMAGE, stage).strip()

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = orjson.loads(docker("inspect", "-f", "{{json .State}}", self.id))
        return state

    @property
    def pid(self) -> int:
        return int(self._state()["Pid"])

    def poll(self) -> int | None:
        state = self._state()
        return None if state["Running"] else int(state["ExitCode"])

    def output(self) -> str:
        done = subprocess.run(
            ["docker", "logs", self.id], capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout + done.stderr

    def terminate(self) -> None:
        docker("kill", "--signal", "TERM", self.id)

    def wait(self, timeout_s: float) -> int:
        # subprocess.TimeoutExpired on timeout, as Popen.wait raises.
        return int(docker("wait", self.id, timeout_s=timeout_s).strip())

    def stop(self) -> None:
        docker("rm", "-f", self.id)


class Containers:
    """Starts StageContainers labelled with this run's id; removes them all."""

    def __init__(self) -> None:
        self.label = f"edgegw.bench=container_overhead-{uuid.uuid4().hex[:8]}"

    def __call__(self, stage: str, env: dict[str, str], directory: Path) -> StageContainer:
        return StageContainer(stage, env, directory, self.label)

    def remove_all(self) -> None:
        ids = docker("ps", "-aq", "--filter", f"label={self.label}").split()
        if ids:
            docker("rm", "-f", *ids)


def cgroup_mb(pid: int) -> float | None:
    """The cgroup memory of `pid`'s container as `docker stats` shows it:
    usage minus inactive file cache (cgroup v1 or v2)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            usage_file, inactive = "memory.usage_in_bytes", "total_inactive_file"
            break
        if number == "0" and not controllers:
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            usage_file, inactive = "memory.current", "inactive_file"
    else:
        return None
    if not (base / usage_file).exists():
        return None
    usage = int((base / usage_file).read_text())
    stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
    return round((usage - int(stat.get(inactive, 0))) / MB, 1)


def container_memory(stage: RunningStage) -> dict[str, float]:
    found = memory_of(stage.pid)
    cgroup = cgroup_mb(stage.pid)
    if cgroup is not None:
        found["cgroup_mb"] = cgroup
    return found


def build_image() -> None:
    subprocess.run(
        ["bash", str(REPO / "tools" / "compose.sh"), "build", DETECTOR],
        cwd=REPO,
        check=True,
        stdout=sys.stderr,
        timeout=1800,
    )


def detector_fps(
    observer: Probe,
    camera: Probe,
    jpegs: list[tuple[bytes, int, int]],
    offered_fps: float,
    first_seq: int,
    running: RunningStage,
    started: float,
) -> tuple[float, int]:
    """Detections per second of the one detector running, saturated."""
    try:
        bench.wait_online(observer, started, timeout_s=60)
        detections, _, next_seq = bench.phase(observer, camera, jpegs, offered_fps, first_seq)
        return len(detections) / (bench.PHASE_S - bench.WARMUP_S), next_seq
    finally:
        running.terminate()
        running.wait(15)


def detector_rounds(directory: Path, rounds: int, containers: Containers) -> dict[str, Any]:
    detector = SSDDetector(
        load_model(MODELS / MODEL, threads=bench.THREADS), load_labels(MODELS / LABELS)
    )
    frames = bench.read_video(100)
    interpreter_fps = bench.bare_fps(
        detector, [resize_to_fit(f, bench.WIDTH, bench.WIDTH) for f in frames[:20]]
    )
    offered = 2 * interpreter_fps
    jpegs = bench.jpeg_frames(frames)
    (directory / "broker").mkdir()
    broker = MosquittoBroker(directory / "broker")
    broker.start()
    fps: dict[str, list[float]] = {"container": [], "bare": []}
    try:
        observer = Probe(broker, "operator")
        observer.subscribe(f"{bench.ROOT}/#", qos=0)
        camera = Probe(broker, "camera-capture")
        seq = 0
        for number in range(rounds):
            order = ("container", "bare") if number % 2 == 0 else ("bare", "container")
            for where in order:
                print(f"round {number + 1}: {where} ...", file=sys.stderr, flush=True)
                env = {
                    **broker.env_for(DETECTOR, bench.GATEWAY, instance=where),
                    "EDGEGW_THREADS": str(bench.THREADS),
                }
                started = time.time()
                running: RunningStage = (
                    containers(DETECTOR, env, directory)
                    if where == "container"
                    else StageProcess(DETECTOR, env, directory)
                )
                rate, seq = detector_fps(observer, camera, jpegs, offered, seq, running, started)
                fps[where].append(rate)
        observer.close()
        camera.close()
    finally:
        broker.stop()
    return {
        "interpreter_fps": round(interpreter_fps, 2),
        "offered_fps": round(offered, 1),
        "container_fps": [round(x, 2) for x in fps["container"]],
        "bare_fps": [round(x, 2) for x in fps["bare"]],
        "round_ratios": [
            round(c / b, 3) for c, b in zip(fps["container"], fps["bare"], strict=True)
        ],
        "ratio": round(sum(fps["container"]) / sum(fps["bare"]), 3),
        # Less swayed by one round another process on the machine disturbed.
        "median_round_ratio": round(
            statistics.median(c / b for c, b in zip(fps["container"], fps["bare"], strict=True)), 3
        ),
        "limits": compose_limits(DETECTOR),
    }


def memory_compared(directory: Path, idle_s: float, containers: Containers) -> dict[str, Any]:
    (directory / "bare").mkdir()
    (directory / "containers").mkdir()
    print("idle stack, bare ...", file=sys.stderr, flush=True)
    bare = measure(directory / "bare", idle_s)
    print("idle stack, containers ...", file=sys.stderr, flush=True)
    contained = measure(directory / "containers", idle_s, containers, container_memory)
    names = sorted(bare)
    bare_mb = [bare[name]["rss_mb"] for name in names]
    container_mb = [contained[name]["rss_mb"] for name in names]
    cgroup = [contained[name].get("cgroup_mb") for name in names]
    stages = {
        name: {
            "bare_rss_mb": b,
            "container_rss_mb": c,
            "container_cgroup_mb": g,
            "difference_mb": round(c - b, 1),
        }
        for name, b, c, g in zip(names, bare_mb, container_mb, cgroup, strict=True)
    }
    return {
        "idle_s": idle_s,
        "measure": "VmRSS of the stage's process (/proc); cgroup: usage - inactive_file",
        "bare_rss_mb": round(sum(bare_mb), 1),
        "container_rss_mb": round(sum(container_mb), 1),
        "container_cgroup_mb": round(sum(g or 0.0 for g in cgroup), 1),
        "max_stage_difference_mb": round(
            max(abs(c - b) for b, c in zip(bare_mb, container_mb, strict=True)), 1
        ),
        "stages": stages,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--no-build", action="store_true", help="use the image as it is")
    args = parser.parse_args()
    if not args.no_build:
        build_image()
    containers = Containers()
    try:
        with tempfile.TemporaryDirectory(prefix="edgegw-overhead-") as scratch:
            directory = Path(scratch)
            result = detector_rounds(directory, args.rounds, containers)
            result["goal_ratio"] = f">= {GOAL_RATIO}"
            result["meets_goal"] = result["ratio"] >= GOAL_RATIO
            result["memory"] = memory_compared(directory, args.idle_s, containers)
    finally:
        containers.remove_all()
    sys.stdout.write(orjson.dumps({"container_overhead": result}).decode() + "\n")


if __name__ == "__main__":
    main()
