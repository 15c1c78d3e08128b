"""Seed 004's experiment live: a seed request file replayed, scaled down,
against the real deployer (its download slots, planner and eviction), a real
registry, a real Docker engine and, with --allocator, the real allocator.

    python -m tools.seed004_live --file requests_5_1_10_25_1 --minutes 15 \\
        --seconds-per-minute 2 --out bench-results/seed004-live.json

Scaled down: one seed minute lasts `--seconds-per-minute`; the seed's 24
image types map onto `--types-per-kind` small images per kind (audio k and
yolo k -> `<kind><(k - 1) mod n>`), built here as the seed's images are
(base -> per-kind runtime -> model -> code; a few hundred KiB of
incompressible model per layer) and pushed to a registry of the run's own;
the image disk budget (`--budget-mib`, compressed bytes) is below what the
images need together, so evictions happen. A request's saving is the seed's
(models.json -> ida: 688.52 kbit/s audio, 22.48 yolo).

The deployer plans every `5 x seconds-per-minute` (the seed's 5-minute
slots). The replay follows the deployer's slots: the seed's minute 5k is
the deployer's slot k, and minutes 5k..5k+4 are published (removals, then
arrivals; a request is removed when its lifetime from arrival ends, as in
the seed) one `--seconds-per-minute` apart after slot k's report. Every
event must be acknowledged by the deployer before the next slot plans
(`late_events` counts those that were not: 0 makes the decisions a function
of the request file). Per slot the JSON holds what the planner chose and
deferred, what was pulled (bytes), evicted and cached, what runs, and the
allocator's knobs when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python tools/seed004_live.py` from anywhere
    sys.path.insert(0, str(REPO))

from schemas.deploy import (  # noqa: E402
    AnalyticState,
    DeployRequest,
    DeploySpec,
    DownloadSlot,
    LifecycleRequest,
    Limits,
)
from schemas.qos import QosKnob, QosLevel, QosLevels  # noqa: E402
from schemas.topics import CLOUD_BRIDGE  # noqa: E402
from services.bandwidth_allocator.seed004_pricing import Kind, Seed004Models, kind_of  # noqa: E402
from tests.harness.broker import MosquittoBroker  # noqa: E402
from tests.harness.probe import Probe, Seen  # noqa: E402
from tests.harness.stage_process import StageProcess  # noqa: E402
from tests.integration.deployer.environment import (  # noqa: E402
    BridgeBroker,
    create_network,
    identity_env,
    remove_gateway_containers,
    remove_network,
)
from tools import seed004_data  # noqa: E402
from tools.analytic_images import (  # noqa: E402
    NOBODY,
    ExampleImage,
    _static_busybox,
    build_and_push,
)
from tools.local_registry import LocalRegistry  # noqa: E402
from tools.seed004_experiment import ReplaySettings  # noqa: E402

PREFIX = "live-seed"  # repositories of the run's images (never another test's)
KINDS = ("audio", "yolo")
KIB = 1024
# Sizes (KiB) scaled from the seed's images (~1 GB each, audio sharing more):
# a busybox base (~1 MB compressed) for all, a runtime per kind, a model per type.
RUNTIME_KIB = {"audio": 600, "yolo": 900}
MODEL_KIB = {"audio": (200, 300, 400, 500), "yolo": (300, 450, 600, 750)}
RUNNER = """#!/bin/sh
trap 'exit 0' TERM
echo "$TYPE up"
while true; do sleep 1 & wait $!; done
"""
STATE_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class LiveOptions:
    request_file: Path
    seconds_per_minute: float = 2.0
    minutes: int | None = None  # replay minutes 0..minutes-1 (None: the whole file)
    types_per_kind: int = 3
    budget_mib: float = 3.5
    planner: str = "greedy"
    policy: str = "LRU"
    downlink_kbps: float | None = None
    allocator: bool = False


def live_type(seed_type: str, per_kind: int) -> str:
    kind = kind_of(seed_type)
    number = int(seed_type[len(kind) :])
    return f"{kind}{(number - 1) % per_kind}"


def _blob(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)  # incompressible, the same every build


def live_images(per_kind: int) -> list[ExampleImage]:
    """Parents first: the base and runtimes stay local (never pushed), each
    type's image adds its model and code layers."""
    if not 1 <= per_kind <= len(MODEL_KIB["audio"]):
        raise ValueError(f"types per kind: 1..{len(MODEL_KIB['audio'])}")
    base = ExampleImage(
        "base",
        "1",
        'FROM scratch\nCOPY rootfs/ /\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n',
        {"rootfs/bin/busybox": _static_busybox(), "rootfs/etc/passwd": NOBODY},
        prefix=PREFIX,
        push=False,
    )
    images = [base]
    for kind in KINDS:
        runtime = ExampleImage(
            f"{kind}-runtime",
            "1",
            f"FROM {base.local}\nCOPY runtime.bin /opt/runtime/{kind}.bin\n",
            {"runtime.bin": _blob(f"{kind}-runtime", RUNTIME_KIB[kind] * KIB)},
            prefix=PREFIX,
            push=False,
        )
        images.append(runtime)
        for i in range(per_kind):
            name = f"{kind}{i}"
            images.append(
                ExampleImage(
                    name,
                    "1",
                    f"FROM {runtime.local}\nCOPY model.bin /opt/model/model.bin\n"
                    f"ENV TYPE={name}\nCOPY run.sh /opt/analytic/run.sh\n"
                    'USER 65534:65534\nCMD ["/bin/sh", "/opt/analytic/run.sh"]\n',
                    {"model.bin": _blob(name, MODEL_KIB[kind][i] * KIB), "run.sh": RUNNER},
                    prefix=PREFIX,
                )
            )
    return images


def forget_images(client: Any, registry: str) -> None:
    """Every local image of the run's repositories: built ones and pulled ones."""
    for image in client.images.list():
        references = [*image.tags, *(image.attrs.get("RepoDigests") or [])]
        ours = [r for r in references if r.startswith((f"{PREFIX}/", f"{registry}/{PREFIX}/"))]
        for reference in ours:
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                client.images.remove(reference, force=True)


@dataclass(frozen=True, slots=True)
class Event:
    minute: int
    action: str  # "remove" or "deploy"
    analytic: str
    image: str  # live image name
    kind: Kind
    lifetime_minutes: int


def events_of(requests: list[seed004_data.Request], options: LiveOptions) -> list[Event]:
    out: list[Event] = []
    end = options.minutes
    for index, request in enumerate(requests):
        if end is not None and request.arrival_minute >= end:
            continue
        name = f"{request.analytic_type}-{request.arrival_minute}-{index}"
        image = live_type(request.analytic_type, options.types_per_kind)
        kind = kind_of(request.analytic_type)
        departs = request.arrival_minute + request.lifetime_minutes
        out.append(
            Event(request.arrival_minute, "deploy", name, image, kind, request.lifetime_minutes)
        )
        if end is None or departs < end:
            out.append(Event(departs, "remove", name, image, kind, request.lifetime_minutes))
    return sorted(out, key=lambda e: (e.minute, e.action != "remove", e.analytic))


class LiveRun:
    """The processes and clients of one run; `replay` drives it."""

    def __init__(
        self, options: LiveOptions, broker: MosquittoBroker, registry: str, network: str, work: Path
    ) -> None:
        self.options = options
        self.broker = broker
        self.registry = registry
        self.gateway_id = f"live-{uuid.uuid4().hex[:8]}"
        self.root = f"edgegw/{self.gateway_id}"
        self.work = work
        slot_s = 5 * options.seconds_per_minute
        env = {
            **broker.env_for("deployer", self.gateway_id),
            "EDGEGW_REGISTRY": registry,
            "EDGEGW_ANALYTICS_NETWORK": network,
            **identity_env(broker),
            "EDGEGW_RECONCILE_SETTLE_S": "0.3",
            "EDGEGW_WATCH_INTERVAL_S": "0.2",
            "EDGEGW_STOP_TIMEOUT_S": "1",
            "EDGEGW_DOWNLOAD_PLANNER": options.planner,
            "EDGEGW_DOWNLOAD_SLOT_S": str(slot_s),
            "EDGEGW_DOWNLOAD_SLOT_CLOCK": "true",  # the replay's minutes follow the slots
            "EDGEGW_EVICTION_POLICY": options.policy,
            "EDGEGW_IMAGE_DISK_BUDGET_MB": str(options.budget_mib),
            "EDGEGW_LAYER_EXPANSION": "1",
            "EDGEGW_MAX_PENDING": "256",
        }
        if options.downlink_kbps is not None:
            env["EDGEGW_DOWNLINK_KBPS"] = str(options.downlink_kbps)
        self.observer = Probe(broker, "operator")
        for topic in ("deploy/state/#", "deploy/slot", "qos/+", "allocator/plan", "status/+"):
            self.observer.subscribe(f"{self.root}/{topic}")
        self.processes = [StageProcess("deployer", env, work)]
        self.levels: Probe | None = None
        if options.allocator:
            allocator_env = {
                **broker.env_for("bandwidth-allocator", self.gateway_id),
                "EDGEGW_BUDGET_KBPS": "5000",
            }
            self.processes.append(StageProcess("bandwidth-allocator", allocator_env, work))
            self.levels = Probe(broker, CLOUD_BRIDGE)  # a cloud analytic's levels come this way

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        self.observer.close()
        if self.levels is not None:
            self.levels.close()

    def state_history(self) -> list[AnalyticState]:
        """Every state the deployer reported, in order (removals' empty payloads left out)."""
        prefix = f"{self.root}/deploy/state/"
        received = self.observer.received(lambda m: m.topic.startswith(prefix) and bool(m.payload))
        return [AnalyticState.from_bytes(m.payload) for m in received]

    def states(self) -> dict[str, AnalyticState]:
        return {state.analytic: state for state in self.state_history()}

    def downloads(self) -> dict[str, int]:
        """Bytes each analytic's pull downloaded (its last download total)."""
        return {
            state.analytic: state.download.bytes_total
            for state in self.state_history()
            if state.download is not None
        }

    def slot_reports(self) -> list[tuple[float, DownloadSlot]]:
        topic = f"{self.root}/deploy/slot"
        return [
            (m.at, DownloadSlot.from_bytes(m.payload))
            for m in self.observer.received(lambda m: m.topic == topic and bool(m.payload))
        ]

    def wait_slot(self, slot: int, timeout_s: float) -> tuple[float, DownloadSlot]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, report in self.slot_reports():
                if report.slot == slot:
                    return at, report
            time.sleep(0.02)
        raise TimeoutError(f"no report of slot {slot} in {timeout_s} s")

    def publish(self, event: Event, models: Seed004Models) -> None:
        if event.action == "deploy":
            spec = DeploySpec(
                analytic=event.analytic,
                image=f"{PREFIX}/{event.image}:1",
                upload_saving_kbps=models.saving_kbps[event.kind],
                limits=Limits(cpus=0.05, memory_mb=16, pids=8),
                restart="no",
            )
            payload = DeployRequest(source="operator", request=spec).to_bytes()
            self.publish_levels(event, models, on_gateway=False)
        else:
            if self.levels is not None:  # gone: the allocator forgets its levels
                self.levels.publish(f"{self.root}/qos/{event.analytic}/levels", b"", retain=True)
            payload = LifecycleRequest(
                source="operator", action="remove", analytic=event.analytic
            ).to_bytes()
        self.observer.publish(f"{self.root}/deploy/request", payload)

    def publish_levels(self, event: Event, models: Seed004Models, on_gateway: bool) -> None:
        """What the analytic costs where it runs now (the seed's bandwidth
        models): its raw upload in the cloud, its results on the gateway."""
        if self.levels is None:
            return
        kind = event.kind
        levels = [
            QosLevel(
                name=f"k{knob:.3f}", params={"knob": knob}, cost_kbps=p.cost_kbps, utility=p.utility
            )
            for knob, p in models.knob_levels(kind, on_gateway)
        ]
        message = QosLevels(source=CLOUD_BRIDGE, analytic=event.analytic, levels=levels)
        self.levels.publish(
            f"{self.root}/qos/{event.analytic}/levels", message.to_bytes(), retain=True
        )

    def knobs(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for message in self.observer.received(lambda m: _is_knob(m, self.root)):
            knob = QosKnob.from_bytes(message.payload)
            out[knob.analytic] = float(knob.level.params.get("knob", 0.0))
        return out


def _is_knob(message: Seen, root: str) -> bool:
    rest = message.topic.removeprefix(f"{root}/qos/")
    return rest != message.topic and "/" not in rest and bool(message.payload)


def _acknowledged(event: Event, states: dict[str, AnalyticState]) -> bool:
    state = states.get(event.analytic)
    if state is None:
        return False
    if event.action == "remove":
        return state.state == "removed"
    return state.state != "requested"


def replay(
    run: LiveRun,
    requests: list[seed004_data.Request],
    models: Seed004Models,
    on_slot: Callable[[dict[str, Any], str], None] | None = None,
) -> dict[str, Any]:
    options = run.options
    events = events_of(requests, options)
    last_minute = options.minutes or max(e.minute for e in events) + 1
    slots = (last_minute + 4) // 5 + 1
    slot_wait = 5 * options.seconds_per_minute * 3 + 60
    run.wait_slot(0, slot_wait)  # minute 0 starts with slot 0's report
    late: list[str] = []
    rows: list[dict[str, Any]] = []
    published: list[Event] = []
    hosted: set[str] = set()
    for slot in range(slots):
        at, report = run.wait_slot(slot, slot_wait)
        states = run.states()
        late += [e.analytic for e in published if not _acknowledged(e, states)]
        published = []
        if rows:  # the previous slot's pulls are done: what they downloaded
            pulled = run.downloads()
            rows[-1]["pulled_bytes"] = sum(pulled.get(a, 0) for a in rows[-1]["chosen"])
        rows.append(_slot_row(run, report, states, models, events))
        if on_slot is not None:
            on_slot(rows[-1], run.registry)
        for j in range(5):
            minute = 5 * slot + j
            if minute >= last_minute:
                break
            wake = at + j * options.seconds_per_minute + 0.1
            while time.time() < wake:
                _follow_hosting(run, events, models, hosted)
                time.sleep(0.02)
            for event in (e for e in events if e.minute == minute):
                run.publish(event, models)
                published.append(event)
    summary = _summary(rows, late)
    return {
        "options": {**asdict(options), "request_file": str(options.request_file)},
        **summary,
        "slots": rows,
    }


def _follow_hosting(
    run: LiveRun, events: list[Event], models: Seed004Models, hosted: set[str]
) -> None:
    if run.levels is None:
        return
    by_name = {e.analytic: e for e in events if e.action == "deploy"}
    for analytic, state in run.states().items():
        if state.state == "running" and analytic not in hosted and analytic in by_name:
            hosted.add(analytic)
            run.publish_levels(by_name[analytic], models, on_gateway=True)


def _slot_row(
    run: LiveRun,
    report: DownloadSlot,
    states: dict[str, AnalyticState],
    models: Seed004Models,
    events: list[Event],
) -> dict[str, Any]:
    kinds = {e.analytic: e.kind for e in events}
    running = sorted(a for a, s in states.items() if s.state == "running")

    def short(image: str) -> str:  # without the run's registry address
        return image.removeprefix(f"{run.registry}/")

    return {
        "slot": report.slot,
        "seed_minute": 5 * report.slot,
        "chosen": report.chosen,
        "deferred": report.deferred,
        "images": [short(image) for image in report.images],
        "planned_bytes": report.planned_bytes,
        "saved_kbps_planned": report.saved_kbps,
        "evicted": [{**e.model_dump(), "image": short(e.image)} for e in report.evicted],
        "cached": [short(image) for image in report.cached],
        "cache_bytes_before": report.cache_bytes_before,
        "cache_bytes_after": report.cache_bytes_after,
        "capacity_bytes": report.capacity_bytes,
        "budget_bytes": report.budget_bytes,
        "solve_ms": report.solve_ms,
        "running": running,
        "running_saving_kbps": sum(models.saving_kbps[kinds[a]] for a in running if a in kinds),
        "pulled_bytes": 0,  # filled in at the next report, when the pulls are done
        "knobs": run.knobs() if run.levels is not None else {},
    }


def _summary(rows: list[dict[str, Any]], late: list[str]) -> dict[str, Any]:
    return {
        "late_events": len(late),
        "late": late[:50],
        "slots_planned": len(rows),
        "images_pulled": sum(len(r["images"]) for r in rows),
        "planned_bytes": sum(r["planned_bytes"] for r in rows),
        "pulled_bytes": sum(r["pulled_bytes"] for r in rows),
        "evictions": sum(len(r["evicted"]) for r in rows),
        "evicted_bytes": sum(e["freed_bytes"] for r in rows for e in r["evicted"]),
        "running_mean": statistics.fmean(len(r["running"]) for r in rows) if rows else 0.0,
        "running_saving_kbps_mean": (
            statistics.fmean(r["running_saving_kbps"] for r in rows) if rows else 0.0
        ),
        "decisions": [
            {
                "slot": r["slot"],
                "images": r["images"],
                "evicted": [e["image"] for e in r["evicted"]],
            }
            for r in rows
        ],
    }


def run_live(
    options: LiveOptions,
    workdir: Path,
    folder: Path | None = None,
    on_slot: Callable[[dict[str, Any], str], None] | None = None,
) -> dict[str, Any]:
    """The whole run in its own network, broker and registry; `on_slot(row,
    registry)` is called at each slot's report, while the run goes on."""
    folder = seed004_data.data_dir(folder)
    raw = seed004_data.load_models(folder)
    models = Seed004Models.from_json(raw, ReplaySettings.for_file(options.request_file, raw).era)
    requests = seed004_data.load_requests(options.request_file)
    client = docker.from_env(version="auto", timeout=120)
    network = create_network(client, prefix="live")
    (workdir / "broker").mkdir(parents=True, exist_ok=True)
    broker = BridgeBroker(workdir / "broker", network.gateway)
    registry = LocalRegistry(workdir / "registry")
    run: LiveRun | None = None
    try:
        broker.start()
        registry.start()
        pushed = build_and_push(registry.address, client, live_images(options.types_per_kind))
        forget_images(client, registry.address)
        run = LiveRun(options, broker, registry.address, network.name, workdir)
        result = replay(run, requests, models, on_slot)
        result["image_bytes"] = {
            name: sum(layer["size"] for layer in image["layers"]) for name, image in pushed.items()
        }
        return result
    finally:
        if run is not None:
            run.close()
            remove_gateway_containers(client, run.gateway_id)
        remove_network(client, network.name)
        forget_images(client, registry.address)
        registry.stop()
        broker.stop()
        client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.seed004_live", description=__doc__)
    parser.add_argument("--data", type=Path, default=None, help="seed004 folder")
    parser.add_argument("--file", default="requests_5_1_10_25_1", help="request file stem")
    parser.add_argument("--minutes", type=int, default=15)
    parser.add_argument("--seconds-per-minute", type=float, default=2.0)
    parser.add_argument("--types-per-kind", type=int, default=3)
    parser.add_argument("--budget-mib", type=float, default=3.5)
    parser.add_argument("--planner", default="greedy")
    parser.add_argument("--policy", default="LRU")
    parser.add_argument("--downlink-kbps", type=float, default=None)
    parser.add_argument("--allocator", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results/seed004-live.json"))
    args = parser.parse_args(argv)
    folder = seed004_data.data_dir(args.data)
    options = LiveOptions(
        folder / "requests" / f"{args.file}.csv",
        args.seconds_per_minute,
        args.minutes,
        args.types_per_kind,
        args.budget_mib,
        args.planner,
        args.policy,
        args.downlink_kbps,
        args.allocator,
    )
    with tempfile.TemporaryDirectory(prefix="live-seed004-") as work:
        result = run_live(options, Path(work), folder)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(
        orjson.dumps(
            {k: v for k, v in result.items() if k != "slots"}, option=orjson.OPT_INDENT_2
        ).decode()
    )


if __name__ == "__main__":
    main()
