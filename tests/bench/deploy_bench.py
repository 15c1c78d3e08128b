"""`deploy`: request -> `running` latency of the deployer for an image already
on disk, one sharing all but its top layer with an image on disk, and one
pulled whole from the local registry; each next to `docker run -d` of the
same image from the CLI (the same limits, mounts, restart policy and network
the deployer gives it, the same layers on disk first) in the same run, rounds
interleaved, medians compared. Also the deployer's idle RSS.

    python -m tests.bench.deploy_bench [--rounds 5] [--phases]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import orjson

from schemas.deploy import AnalyticState, DeployRequest, DeploySpec, LifecycleRequest
from services.deployer.settings import DeployerSettings
from tests.harness.probe import Probe
from tests.harness.stage_process import StageProcess
from tests.integration.deployer.environment import (
    BridgeBroker,
    create_network,
    drop_local,
    identity_env,
    registry_reference,
    remove_gateway_containers,
    remove_network,
)
from tools.analytic_images import build_and_push
from tools.local_registry import LocalRegistry

GATEWAY = f"bench{uuid.uuid4().hex[:6]}"
ROOT = f"edgegw/{GATEWAY}"
# image (name, tag) per case, and what is dropped from disk before each round
CASES = {
    "cached": (("hello", "1"), None),
    "shared_layers": (("hello", "2"), ("hello", "2")),
    "pulled": (("solo", "1"), ("solo", "1")),
}


def wait_state(observer: Probe, analytic: str, state: str, timeout_s: float = 60) -> float:
    topic = f"{ROOT}/deploy/state/{analytic}"

    def reached(m: Any) -> bool:
        return (
            m.topic == topic
            and bool(m.payload)
            and AnalyticState.from_bytes(m.payload).state in (state, "failed")
        )

    found = observer.wait_for(reached, timeout_s=timeout_s)[-1]
    final = AnalyticState.from_bytes(found.payload)
    if final.state != state:
        raise RuntimeError(f"{analytic}: {final.state} ({final.reason})")
    return found.at


def deployer_run(observer: Probe, name: str, tag: str, analytic: str, phases: bool) -> float:
    spec = DeploySpec(
        analytic=analytic, image=f"edgegw-analytics/{name}:{tag}", upload_saving_kbps=1
    )
    started = time.time()
    observer.publish(
        f"{ROOT}/deploy/request", DeployRequest(source="operator", request=spec).to_bytes()
    )
    running = wait_state(observer, analytic, "running")
    elapsed = running - started
    if phases:  # when each state was published, in ms after the request
        topic = f"{ROOT}/deploy/state/{analytic}"
        seen = [
            AnalyticState.from_bytes(m.payload)
            for m in observer.received(lambda m: m.topic == topic and bool(m.payload))
        ]
        marks = [(s.state, round((s.ts - started) * 1000)) for s in seen]
        print(analytic, marks, file=sys.stderr)
    removal = LifecycleRequest(source="operator", action="remove", analytic=analytic)
    observer.publish(f"{ROOT}/deploy/request", removal.to_bytes())
    wait_state(observer, analytic, "removed")
    return elapsed


def docker_run(reference: str, network: str) -> float:
    name = f"edgegw-bench-{uuid.uuid4().hex[:8]}"
    command = [
        "docker", "run", "-d", "--name", name, "--network", network,
        "--read-only", "--user", "65534:65534", "--cpus", "0.5", "--memory", "64m",
        "--memory-swap", "64m", "--pids-limit", "64", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--tmpfs", "/tmp:rw,noexec,nosuid,size=16m",
        "--log-opt", "max-size=1m", "--log-opt", "max-file=2",
        "--restart", "on-failure:2", "--label", "edgegw.bench=1", reference,
    ]  # fmt: skip
    started = time.time()
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    elapsed = time.time() - started
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True, timeout=60)
    return elapsed


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--phases", action="store_true", help="print each state's time")
    parser.add_argument(
        "--planner", default=None, help="EDGEGW_DOWNLOAD_PLANNER (default: the deployer's own)"
    )
    args = parser.parse_args()
    engine = docker.from_env(version="auto", timeout=300)
    network = create_network(engine, "edgegw-bench")
    work = Path(tempfile.mkdtemp(prefix="edgegw-deploy-bench-"))
    registry = LocalRegistry(work / "registry")
    broker = BridgeBroker(work / "broker", network.gateway)
    registry.start()
    broker.start()
    deployer: StageProcess | None = None
    observer: Probe | None = None
    try:
        build_and_push(registry.address, engine)
        # hello:1 stays on disk under its registry name: the "cached" case.
        engine.images.pull(registry_reference(registry, "hello"))
        env = {
            **broker.env_for("deployer", GATEWAY),
            "EDGEGW_REGISTRY": registry.address,
            "EDGEGW_ANALYTICS_NETWORK": network.name,
            **identity_env(broker),
            "EDGEGW_RECONCILE_SETTLE_S": "0.2",
            "EDGEGW_STOP_TIMEOUT_S": "0",
            "EDGEGW_LOG_LEVEL": "WARNING",
        }
        if args.planner is not None:
            env["EDGEGW_DOWNLOAD_PLANNER"] = args.planner
        deployer = StageProcess("deployer", env, work)
        observer = Probe(broker, "operator")
        observer.subscribe(f"{ROOT}/status/deployer")
        observer.wait_for(lambda m: m.payload == b"online", timeout_s=30)
        observer.subscribe(f"{ROOT}/deploy/state/#")
        time.sleep(3)  # reconciled, idle
        idle_rss = rss_mb(deployer.pid)

        timings: dict[str, dict[str, list[float]]] = {
            case: {"deployer": [], "docker_run": []} for case in CASES
        }
        for round_ in range(args.rounds):
            for case, ((name, tag), drop) in CASES.items():
                for runner in ("deployer", "docker_run"):
                    if drop is not None:
                        drop_local(engine, registry, *drop)
                    if runner == "deployer":
                        analytic = f"{case}-{round_}"
                        elapsed = deployer_run(observer, name, tag, analytic, args.phases)
                    else:
                        reference = registry_reference(registry, name, tag)
                        elapsed = docker_run(reference, network.name)
                    timings[case][runner].append(elapsed)
        planner = args.planner or DeployerSettings.model_fields["download_planner"].default
        result: dict[str, Any] = {
            "rounds": args.rounds,
            "planner": planner,
            "idle_rss_mb": round(idle_rss, 1),
        }
        for case, measured in timings.items():
            ours = statistics.median(measured["deployer"])
            theirs = statistics.median(measured["docker_run"])
            result[f"{case}_ms"] = round(ours * 1000, 1)
            result[f"{case}_docker_run_ms"] = round(theirs * 1000, 1)
            result[f"{case}_vs_docker_run"] = round(ours / theirs, 3)
        sys.stdout.write(orjson.dumps({"deploy": result}).decode() + "\n")
    finally:
        if observer is not None:
            observer.close()
        if deployer is not None:
            deployer.stop()
        remove_gateway_containers(engine, GATEWAY)
        remove_network(engine, network.name)
        for name in ("hello", "solo"):
            drop_local(engine, registry, name)
        broker.stop()
        registry.stop()


if __name__ == "__main__":
    main()
