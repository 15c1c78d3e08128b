"""Seed 004's experiment replayed in compressed time: `make experiment-seed004`.

For each request file of ../shared/seed004/requests (the seed's own), each
download planner x eviction policy places the analytics minute by minute:
a request starts in the cloud; every slot (5 min, from minute 5) the cache is
trimmed (eviction) and the planner chooses images under the slot's budget;
a chosen image's layers download one image after another at the downlink
rate, then it is extracted (the seed's per-image extraction time), and then
every alive request of it moves to the gateway. A request whose image is
complete on disk starts on the gateway. Then, every minute, every allocator
chooses the knobs of the analytics alive that minute under the uplink.

Everything numeric comes from the data folder (models.json, layers.csv,
weights.csv, the request files); nothing here is a guess at the seed's
numbers. Outputs (in --out): minutes.csv (per configuration and minute),
summary.json (per configuration), comparison.md (next to the seed's logged
results.csv), seed004.png (QoS and saved bandwidth over time).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.bandwidth_allocator.seed004_pricing import (
    Era,
    Instance,
    Kind,
    Seed004Models,
    kind_of,
    seed_equal_split,
    seed_raa_greedy,
    seed_weighted_split,
    solver_input,
    weighted_qos,
)
from services.bandwidth_allocator.solvers import (
    lp_upper_bound,
    solve_dp,
    solve_fptas,
    solve_greedy_hull,
)
from services.deployer.download_planner import (
    PLANNERS,
    CachedLayer,
    DownloadPlan,
    DownloadProblem,
    EvictionPolicy,
    LayerCatalog,
    PendingRequest,
    choose_evictions,
    make_room,
    plan_exact,
    plan_fptas,
    slot_capacity_bytes,
    without_low_density,
)
from tools import seed004_data

PLANNER_NAMES = ("exact", "fptas", "greedy", "seed_dp")
POLICIES = tuple(EvictionPolicy)
ALLOCATORS = (
    "dp",
    "fptas",
    "greedy_hull",
    "wa_seed",
    "ua_seed",
    "raa_seed",
    "dp_measured_table",  # our DP optimising the measured fallback table
)
PLANNER_EPS = 0.1  # models.json -> ida.fptas.epsilon_default
# Our planners skip images saving under half the best candidate's saving per
# new byte. Chosen with `tune_density_floor` on 100 traces per request rate drawn
# from the seed's generator (seeds 1000-1099), never on the seed's request files:
# 0.4-0.6 is a plateau, +7 % (3/min) and +7.5 % (5/min) over the seed's DP.
DENSITY_FLOOR = 0.5
FILE_NAME = re.compile(r"requests_(\d+)_(\d+)_(\d+)_(\d+)_(\d+)\.csv$")


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    era: Era
    version: int  # the weight version = the request file's version
    total_minutes: int
    disk_bytes: int
    uplink_kbps: float
    downlink_kbps: float
    slot_minutes: int
    first_slot_minute: int
    trigger_fraction: float
    target_fraction: float
    extraction_s: dict[str, float]

    @classmethod
    def for_file(cls, path: Path, models: dict[str, Any]) -> ReplaySettings:
        match = FILE_NAME.search(path.name)
        if match is None:
            raise ValueError(f"not a seed request file name: {path.name}")
        rate, _, _, total, version = (int(g) for g in match.groups())
        era = (
            Era.MAY_2020
            if rate == models["requests"]["globecom2020"]["rate_per_min"]
            else (Era.AUG_2020)
        )
        optical = models["network_presets_kbps"]["optical"]  # every logged run's preset
        replacement = models["replacement"]
        return cls(
            era=era,
            version=version,
            total_minutes=total,
            disk_bytes=int(replacement["disk_bytes"]),
            uplink_kbps=float(optical["up"]),
            downlink_kbps=float(optical["down"]),
            slot_minutes=int(models["ida"]["slot_minutes"]),
            first_slot_minute=int(models["ida"]["first_slot_minute"]),
            trigger_fraction=float(replacement["trigger_usage_fraction"]),
            target_fraction=float(replacement["target_usage_fraction"]),
            extraction_s={
                k: float(v)
                for k, v in models["extraction_time_s"].items()
                if k != "source" and k != "meaning"
            },
        )


@dataclass(slots=True)
class _Alive:
    name: str
    analytic_type: str
    arrives: int
    departs: int
    on_gateway: bool = False


@dataclass(frozen=True, slots=True)
class MinuteState:
    minute: int
    instances: tuple[Instance, ...]
    moved_to_gateway: tuple[str, ...]  # types of the requests that moved this minute
    downloaded_bytes: int  # bytes the planner put on the link this minute (slot minutes)
    disk_bytes: int  # compressed bytes on disk after this minute's work
    evicted_bytes: int
    plan: DownloadPlan | None
    problem: DownloadProblem | None  # what the planner was given (slot minutes)


@dataclass(slots=True)
class _Disk:
    catalog: LayerCatalog
    layers: dict[str, CachedLayer] = field(default_factory=dict)

    def used(self) -> int:
        return sum(layer.size_bytes for layer in self.layers.values())

    def complete(self, image: str) -> bool:
        return all(layer in self.layers for layer in self.catalog.image_layers[image])

    def start_container(self, image: str, clock: float) -> None:
        stack = self.catalog.image_layers[image]
        for height, layer_id in enumerate(stack):
            old = self.layers.get(layer_id)
            uses = old.uses if old else 0
            self.layers[layer_id] = CachedLayer(
                self.catalog.layer_bytes[layer_id], clock, uses + 1, height
            )

    def add(self, image: str, layer_ids: Sequence[str], clock: float) -> None:
        stack = self.catalog.image_layers[image]
        for layer_id in layer_ids:
            if layer_id not in self.layers:
                self.layers[layer_id] = CachedLayer(
                    self.catalog.layer_bytes[layer_id], clock, 0, stack.index(layer_id)
                )


@dataclass(frozen=True, slots=True)
class ValueModel:
    """What a pending request is worth to our planners: its saving (kbit/s)
    times the minutes it is expected to run on the gateway, from the request
    generator's lifetime law (uniform integer in [life_min, life_max],
    models.json -> requests) given its age, after the image's download and
    extraction; plus, when `future` is set, the requests of the same type
    expected to arrive within `horizon_minutes` (rate / 24 types per minute),
    which start on the gateway while the image is cached. The planner never
    sees a request's real lifetime."""

    life_min: int
    life_max: int
    rate_per_min: float
    types: int
    horizon_minutes: int
    future: bool
    make_room: bool = False  # evict layers no container uses when the plan needs their space
    density_floor: float = 0.0  # `download_planner.without_low_density`'s fraction

    def remaining(self, age: int) -> float:
        left = [life - age for life in range(self.life_min, self.life_max + 1) if life > age]
        return statistics.fmean(left) if left else 0.0

    def requests(
        self,
        waiting: Sequence[_Alive],
        minute: int,
        disk: _Disk,
        settings: ReplaySettings,
        models: Seed004Models,
    ) -> tuple[PendingRequest, ...]:
        catalog = disk.catalog
        delay: dict[str, float] = {}
        out: list[PendingRequest] = []
        mean_life = (self.life_min + self.life_max) / 2
        for a in waiting:
            image = a.analytic_type
            if image not in delay:
                new = catalog.bytes_of(
                    lid for lid in catalog.image_layers[image] if lid not in disk.layers
                )
                seconds = new * 8 / (settings.downlink_kbps * 1000) + settings.extraction_s[image]
                delay[image] = max(1, math.ceil(seconds / 60))
                if self.future:
                    arrivals = (
                        self.rate_per_min / self.types * max(0, self.horizon_minutes - delay[image])
                    )
                    saving = models.saving_kbps[_kind(image)]
                    out.append(PendingRequest(image, saving * arrivals * mean_life))
            minutes = max(0.0, self.remaining(minute - a.arrives) - delay[image])
            out.append(PendingRequest(image, models.saving_kbps[_kind(a.analytic_type)] * minutes))
        if self.future and self.make_room:
            # A cached image nobody waits for is worth its expected arrivals:
            # the planner weighs keeping it against the space it could free.
            for image in sorted(catalog.image_layers):
                if image not in delay and disk.complete(image):
                    arrivals = self.rate_per_min / self.types * self.horizon_minutes
                    saving = models.saving_kbps[_kind(image)]
                    out.append(PendingRequest(image, saving * arrivals * mean_life))
        return tuple(out)

    @classmethod
    def for_file(
        cls,
        path: Path,
        future: bool = True,
        horizon_minutes: int = 10,
        density_floor: float = DENSITY_FLOOR,
    ) -> ValueModel:
        match = FILE_NAME.search(path.name)
        if match is None:
            raise ValueError(f"not a seed request file name: {path.name}")
        rate, life_min, life_max, _, _ = (int(g) for g in match.groups())
        return cls(
            life_min,
            life_max,
            float(rate),
            24,
            horizon_minutes,
            future,
            density_floor=density_floor,
        )


def replay_placement(
    requests: Sequence[seed004_data.Request],
    catalog: LayerCatalog,
    models: Seed004Models,
    settings: ReplaySettings,
    planner: str,
    policy: EvictionPolicy,
    value_model: ValueModel | None = None,
) -> list[MinuteState]:
    """Where every request runs, minute by minute, under one planner and policy."""
    plan_fn: Callable[[DownloadProblem], DownloadPlan] = (
        (lambda p: plan_fptas(p, PLANNER_EPS)) if planner == "fptas" else PLANNERS[planner]
    )
    disk = _Disk(catalog)
    alive: list[_Alive] = []
    ready_at: dict[str, int] = {}  # image -> minute its download and extraction finish
    by_minute: dict[int, list[tuple[int, seed004_data.Request]]] = defaultdict(list)
    for index, request in enumerate(requests):
        by_minute[request.arrival_minute].append((index, request))
    states: list[MinuteState] = []
    clock = 0.0  # orders container starts within a minute for LRU/MRU
    for minute in range(settings.total_minutes + 1):
        moved: list[str] = []
        alive = [a for a in alive if a.departs > minute]
        for image, when in sorted(ready_at.items()):
            if when <= minute:
                del ready_at[image]
                for a in alive:
                    if a.analytic_type == image and not a.on_gateway:
                        a.on_gateway = True
                        moved.append(image)
                        clock += 1e-3
                        disk.start_container(image, minute + clock % 1)
        for index, request in by_minute.get(minute, []):
            a = _Alive(
                f"{request.analytic_type}-{request.arrival_minute}-{index}",
                request.analytic_type,
                request.arrival_minute,
                request.arrival_minute + request.lifetime_minutes,
            )
            if request.analytic_type not in ready_at and disk.complete(request.analytic_type):
                a.on_gateway = True
                moved.append(request.analytic_type)
                clock += 1e-3
                disk.start_container(request.analytic_type, minute + clock % 1)
            alive.append(a)
        downloaded = 0
        evicted_bytes = 0
        plan: DownloadPlan | None = None
        problem: DownloadProblem | None = None
        slot = minute - settings.first_slot_minute
        if slot >= 0 and slot % settings.slot_minutes == 0:
            in_use: set[str] = set()
            for image in {a.analytic_type for a in alive if a.on_gateway} | set(ready_at):
                in_use.update(catalog.image_layers[image])
            for layer_id in choose_evictions(
                disk.layers,
                frozenset(in_use),
                settings.disk_bytes,
                policy,
                settings.trigger_fraction,
                settings.target_fraction,
            ):
                evicted_bytes += disk.layers.pop(layer_id).size_bytes
            waiting = [a for a in alive if not a.on_gateway and a.analytic_type not in ready_at]
            if planner == "seed_dp" or value_model is None:
                pending = tuple(
                    PendingRequest(a.analytic_type, models.saving_kbps[_kind(a.analytic_type)])
                    for a in waiting
                )
            else:
                pending = value_model.requests(waiting, minute, disk, settings, models)
            ours = planner != "seed_dp" and value_model is not None
            room = ours and value_model is not None and value_model.make_room
            # Making room: layers no container needs are as good as free disk
            # (evicted below if the plan needs their space); without it, the
            # planner sees only the free disk the threshold eviction left.
            kept = (
                frozenset(lid for lid in disk.layers if lid in in_use)
                if room
                else frozenset(disk.layers)
            )
            capacity = slot_capacity_bytes(
                settings.disk_bytes,
                catalog.bytes_of(kept),
                settings.downlink_kbps,
                settings.slot_minutes * 60.0,
            )
            problem = DownloadProblem(catalog, pending, kept, capacity)
            if ours and value_model is not None and value_model.density_floor > 0:
                problem = without_low_density(problem, value_model.density_floor)
            plan = plan_fn(problem)
            if room:
                needed = set().union(*(set(catalog.image_layers[im]) for im in plan.images))
                link_new = catalog.bytes_of(lid for lid in needed if lid not in disk.layers)
                over = disk.used() + link_new - settings.disk_bytes
                if over > 0:
                    for layer_id in make_room(
                        disk.layers, frozenset(in_use | needed), policy, over
                    ):
                        evicted_bytes += disk.layers.pop(layer_id).size_bytes
            choices = {c.image: c for c in problem.choices()}
            # Best saving per byte first, the same download order for every planner.
            order = sorted(
                plan.images,
                key=lambda im: (
                    -choices[im].value_kbps / max(1, problem.new_bytes(choices[im])),
                    im,
                ),
            )
            elapsed_s = 0.0
            for image in order:
                new = [lid for lid in catalog.image_layers[image] if lid not in disk.layers]
                size = catalog.bytes_of(new)
                disk.add(image, new, minute)
                downloaded += size
                elapsed_s += size * 8 / (settings.downlink_kbps * 1000)
                ready_s = elapsed_s + settings.extraction_s[image]
                ready_at[image] = minute + max(1, math.ceil(ready_s / 60))
        states.append(
            MinuteState(
                minute=minute,
                instances=tuple(
                    Instance(a.name, a.analytic_type, a.on_gateway)
                    for a in sorted(alive, key=lambda a: a.name)
                ),
                moved_to_gateway=tuple(moved),
                downloaded_bytes=downloaded,
                disk_bytes=disk.used(),
                evicted_bytes=evicted_bytes,
                plan=plan,
                problem=problem,
            )
        )
    return states


def _kind(analytic_type: str) -> Kind:
    return kind_of(analytic_type)


# ------------------------------------------------------------ allocation


@dataclass(frozen=True, slots=True)
class AllocationOutcome:
    expected_qos: float
    measured_qos: float
    upload_kbps: float
    solve_ms: float


@dataclass(slots=True)
class Allocations:
    """Every allocator on one minute's analytics; memoised because many
    placements leave the same analytics in the same places."""

    models: Seed004Models
    weights: Sequence[float]
    cache: dict[tuple[Any, ...], dict[str, AllocationOutcome]] = field(default_factory=dict)
    lp_cache: dict[tuple[Any, ...], float] = field(default_factory=dict)

    def key(self, instances: Sequence[Instance], budget: float) -> tuple[Any, ...]:
        return (budget, tuple((i.analytic_type, i.on_gateway) for i in instances))

    def lp_qos(self, instances: Sequence[Instance], budget: float) -> float:
        key = self.key(instances, budget)
        if key not in self.lp_cache:
            analytics, _ = solver_input(instances, self.models, self.weights)
            bound = lp_upper_bound(analytics, budget)
            total_w = sum(a.weight for a in analytics)
            self.lp_cache[key] = (bound or 0.0) / total_w if total_w else 0.0
        return self.lp_cache[key]

    def run(self, instances: Sequence[Instance], budget: float) -> dict[str, AllocationOutcome]:
        key = self.key(instances, budget)
        if key in self.cache:
            return self.cache[key]
        models, weights = self.models, self.weights
        analytics, level_knobs = solver_input(instances, models, weights)
        knobs: dict[str, list[float]] = {}
        seconds: dict[str, float] = {}
        for name, solve in (
            ("dp", solve_dp),
            ("fptas", solve_fptas),
            ("greedy_hull", solve_greedy_hull),
        ):
            allocation = solve(analytics, budget)
            knobs[name] = [level_knobs[i][choice] for i, choice in enumerate(allocation.choices)]
            seconds[name] = allocation.solve_seconds
        # The same DP given the measured table's utilities instead.
        measured_input, measured_knobs = solver_input(instances, models, weights, measured=True)
        allocation = solve_dp(measured_input, budget)
        knobs["dp_measured_table"] = [
            measured_knobs[i][choice] for i, choice in enumerate(allocation.choices)
        ]
        seconds["dp_measured_table"] = allocation.solve_seconds
        baselines: tuple[tuple[str, Callable[[], list[float]]], ...] = (
            ("wa_seed", lambda: seed_weighted_split(instances, budget, models, weights)),
            ("ua_seed", lambda: seed_equal_split(instances, budget, models)),
            ("raa_seed", lambda: seed_raa_greedy(instances, budget, models, weights)),
        )
        for name, baseline in baselines:
            started = time.perf_counter()
            knobs[name] = baseline()
            seconds[name] = time.perf_counter() - started
        outcome = {
            name: AllocationOutcome(
                expected_qos=weighted_qos(instances, k, weights, models.expected_accuracy),
                measured_qos=weighted_qos(instances, k, weights, models.measured_accuracy),
                upload_kbps=sum(
                    max(0.0, models.upload_kbps(i.kind, i.on_gateway, knob)) if knob > 0 else 0.0
                    for i, knob in zip(instances, k, strict=True)
                ),
                solve_ms=seconds[name] * 1000,
            )
            for name, k in knobs.items()
        }
        self.cache[key] = outcome
        return outcome


# ------------------------------------------------------------ one file, every configuration


@dataclass(frozen=True, slots=True)
class MinuteRow:
    request_file: str
    planner: str
    policy: str
    allocator: str
    minute: int
    instances: int
    on_gateway: int
    expected_qos: float
    measured_qos: float
    lp_qos: float
    upload_kbps: float
    saved_kbps: float  # sustained: the IDA's saving of every gateway-hosted analytic
    saved_kbps_seed_metric: float  # the seed's parser: 688/23 per analytic moved this minute
    downloaded_bytes: int
    disk_bytes: int
    allocate_ms: float
    plan_ms: float | None


def replay_file(
    path: Path,
    folder: Path,
    planners: Sequence[str] = PLANNER_NAMES,
    policies: Sequence[EvictionPolicy] = POLICIES,
    budgets: Sequence[float] | None = None,
    allocators: Sequence[str] = ALLOCATORS,
    value_model: ValueModel | None = None,
) -> list[MinuteRow]:
    """Every configuration on one request file; one row per configuration,
    budget's allocator and minute (budget in the allocator name when not the
    seed's uplink: `dp@2500`)."""
    raw_models = seed004_data.load_models(folder)
    settings = ReplaySettings.for_file(path, raw_models)
    models = Seed004Models.from_json(raw_models, settings.era)
    catalog = seed004_data.load_catalog(folder)
    weights = seed004_data.load_weights(folder)[settings.version]
    requests = seed004_data.load_requests(path)
    allocations = Allocations(models, weights)
    values = value_model or ValueModel.for_file(path)
    rows: list[MinuteRow] = []
    for planner in planners:
        for policy in policies:
            states = replay_placement(requests, catalog, models, settings, planner, policy, values)
            for state in states:
                saved = sum(models.saving_kbps[i.kind] for i in state.instances if i.on_gateway)
                seed_saved = sum(
                    models.parser_saving_kbps[_kind(t)] for t in state.moved_to_gateway
                )
                for budget in budgets or (settings.uplink_kbps,):
                    suffix = "" if budget == settings.uplink_kbps else f"@{budget:g}"
                    if state.instances:
                        outcomes = allocations.run(state.instances, budget)
                        lp = allocations.lp_qos(state.instances, budget)
                    else:
                        outcomes, lp = {}, math.nan
                    for allocator in allocators:
                        outcome = outcomes.get(allocator)
                        rows.append(
                            MinuteRow(
                                request_file=path.stem,
                                planner=planner,
                                policy=str(policy),
                                allocator=allocator + suffix,
                                minute=state.minute,
                                instances=len(state.instances),
                                on_gateway=sum(i.on_gateway for i in state.instances),
                                expected_qos=outcome.expected_qos if outcome else math.nan,
                                measured_qos=outcome.measured_qos if outcome else math.nan,
                                lp_qos=lp,
                                upload_kbps=outcome.upload_kbps if outcome else 0.0,
                                saved_kbps=saved,
                                saved_kbps_seed_metric=seed_saved,
                                downloaded_bytes=state.downloaded_bytes,
                                disk_bytes=state.disk_bytes,
                                allocate_ms=outcome.solve_ms if outcome else 0.0,
                                plan_ms=state.plan.solve_seconds * 1000 if state.plan else None,
                            )
                        )
    return rows


def summarise(rows: Sequence[MinuteRow]) -> list[dict[str, Any]]:
    """One dict per (file, planner, policy, allocator): means over minutes
    (QoS over minutes with at least one analytic), totals of bytes."""
    groups: dict[tuple[str, str, str, str], list[MinuteRow]] = defaultdict(list)
    for row in rows:
        groups[(row.request_file, row.planner, row.policy, row.allocator)].append(row)
    out: list[dict[str, Any]] = []
    for (request_file, planner, policy, allocator), group in sorted(groups.items()):
        busy = [r for r in group if r.instances]
        plans = [r.plan_ms for r in group if r.plan_ms is not None]
        out.append(
            {
                "request_file": request_file,
                "planner": planner,
                "policy": policy,
                "allocator": allocator,
                "minutes": len(group),
                "expected_qos": statistics.fmean(r.expected_qos for r in busy),
                "measured_qos": statistics.fmean(r.measured_qos for r in busy),
                "lp_qos": statistics.fmean(r.lp_qos for r in busy),
                "saved_kbps": statistics.fmean(r.saved_kbps for r in group),
                "saved_kbps_seed_metric": statistics.fmean(r.saved_kbps_seed_metric for r in group),
                "downloaded_bytes": sum(r.downloaded_bytes for r in group),
                "on_gateway": statistics.fmean(r.on_gateway for r in group),
                "disk_pct": 100 * statistics.fmean(r.disk_bytes for r in group) / 3e9,
                "allocate_ms_mean": statistics.fmean(r.allocate_ms for r in busy),
                "allocate_ms_max": max(r.allocate_ms for r in busy),
                "plan_ms_mean": statistics.fmean(plans) if plans else 0.0,
                "plan_ms_max": max(plans) if plans else 0.0,
            }
        )
    return out


# ------------------------------------------------------------ outputs


SEED_IDA = {"DP": "seed_dp", "Greedy": "greedy", "FPTAS": "fptas"}
SEED_RAA = {"RAA": "raa_seed", "WA": "wa_seed", "UA": "ua_seed"}


def comparison_table(summary: Sequence[dict[str, Any]], folder: Path) -> str:
    """Markdown: each logged run of results.csv beside our replay of the same
    configuration on the same request file, and our exact planner + DP."""
    ours = {(s["request_file"], s["planner"], s["policy"], s["allocator"]): s for s in summary}
    lines = [
        "Replay columns: the same configuration in this replay (DP = the seed's DP planner,"
        " Greedy = our greedy by saving per new byte, FPTAS = ours at eps 0.1 whatever eps"
        " the seed logged; RAA/WA/UA = the seed's allocators re-implemented). QoS in the"
        " replay uses the weights the seed scores with (audio k -> p_k, yolo k -> p_{12+k});"
        " the seed's own expected QoS for RAA and UA used other weights (README of seed004)."
        " Saved bandwidth in the seed's metric: 688/23 kbit/s per analytic moved to the"
        " gateway in that minute, averaged over minutes.",
        "",
        "| seed run | request file | seed measured QoS | seed expected QoS | replay expected QoS"
        " | replay measured-table QoS | exact+DP expected QoS | seed saved kbit/s/min"
        " | replay saved (seed metric) | exact planner saved (seed metric) | seed edge"
        " | replay edge |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in seed004_data.load_results(folder):
        planner, allocator = SEED_IDA[run["ida"]], SEED_RAA[run["raa"]]
        key = (run["request_file"], planner, run["lrp"], allocator)
        best = ours.get((run["request_file"], "exact", run["lrp"], "dp"))
        mine = ours.get(key)
        if mine is None or best is None:
            continue
        eps = f" ε={run['epsilon']}" if run["epsilon"] else ""
        lines.append(
            f"| {run['ida']}{eps} {run['raa']} {run['lrp']} | {run['request_file']}"
            f" | {run['measured_qos_mean'] or '-'} | {run['expected_qos_mean']}"
            f" | {mine['expected_qos']:.4f} | {mine['measured_qos']:.4f}"
            f" | {best['expected_qos']:.4f} | {run['saved_bw_kbps_mean']}"
            f" | {mine['saved_kbps_seed_metric']:.1f} | {best['saved_kbps_seed_metric']:.1f}"
            f" | {run['edge_instances_mean']} | {mine['on_gateway']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def write_minutes(rows: Sequence[MinuteRow], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MinuteRow.__slots__)
        for row in rows:
            writer.writerow([getattr(row, name) for name in MinuteRow.__slots__])


def plot(rows: Sequence[MinuteRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = sorted({r.request_file for r in rows})
    fig, axes = plt.subplots(3, len(files), figsize=(4 * len(files), 10), squeeze=False)
    for column, name in enumerate(files):
        mine = [r for r in rows if r.request_file == name]
        qos: dict[str, dict[int, float]] = defaultdict(dict)
        saved: dict[str, dict[int, float]] = defaultdict(dict)
        measured: dict[str, dict[int, float]] = defaultdict(dict)
        for r in mine:
            if (
                r.planner == "exact"
                and r.policy == "LRU"
                and r.instances
                and "@" not in r.allocator
            ):
                qos[r.allocator][r.minute] = r.expected_qos
                measured[r.allocator][r.minute] = r.measured_qos
            if r.allocator == "dp":
                saved[f"{r.planner}/{r.policy}"][r.minute] = r.saved_kbps
        for label, series in sorted(qos.items()):
            axes[0][column].plot(list(series), list(series.values()), label=label)
        for label, series in sorted(measured.items()):
            axes[1][column].plot(list(series), list(series.values()), label=label)
        for label, series in sorted(saved.items()):
            axes[2][column].plot(list(series), list(series.values()), label=label, lw=0.8)
        axes[0][column].set_title(name, fontsize=8)
        axes[0][column].set_ylabel("weighted QoS (expected tables)")
        axes[1][column].set_ylabel("weighted QoS (measured table)")
        axes[2][column].set_ylabel("saved upload kbit/s")
        axes[2][column].set_xlabel("minute")
    axes[0][0].legend(fontsize=6)
    axes[2][0].legend(fontsize=5, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _synthetic_catalog(images: int, rng: random.Random, stacked: bool) -> LayerCatalog:
    """Synthetic catalogues of `images` images of 20 layers. Stacked: like
    Docker images, each is one of images/6 shared 8-layer bases, one of
    images/3 shared 4-layer middles, and 8 layers of its own. Random: 20 layers
    drawn from a pool of 5 x images, so sharing is dense and unstructured."""
    layers: dict[str, tuple[str, ...]] = {}
    if stacked:
        bases = [[f"b{k}_{j}" for j in range(8)] for k in range(max(1, images // 6))]
        middles = [[f"m{k}_{j}" for j in range(4)] for k in range(max(1, images // 3))]
        for k in range(images):
            own = [f"o{k}_{j}" for j in range(8)]
            layers[f"i{k}"] = (*rng.choice(bases), *rng.choice(middles), *own)
    else:
        pool = [f"l{k}" for k in range(5 * images)]
        layers = {f"i{k}": tuple(rng.sample(pool, 20)) for k in range(images)}
    ids = sorted({lid for stack in layers.values() for lid in stack})
    sizes = {lid: rng.randint(1_000_000, 200_000_000) for lid in ids}
    return LayerCatalog(sizes, layers)


def exact_scaling(limit_s: float = 1.0, seed: int = 4) -> list[dict[str, Any]]:
    """plan_exact's time on synthetic catalogues of growing size, a capacity
    of 20 % of all layers and one request per image: the largest size it
    solves within `limit_s` (each run capped at 10 x limit_s)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for stacked in (True, False):
        for images in (24, 50, 100, 200, 400, 800, 1600):
            catalog = _synthetic_catalog(images, rng, stacked)
            requests = tuple(PendingRequest(im, rng.uniform(1, 700)) for im in catalog.image_layers)
            capacity = int(sum(catalog.layer_bytes.values()) * 0.2)
            problem = DownloadProblem(catalog, requests, frozenset(), capacity)
            started = time.perf_counter()
            plan = plan_exact(problem, time_limit_s=10 * limit_s)
            out.append(
                {
                    "sharing": "stacked" if stacked else "random",
                    "images": images,
                    "layers": len(catalog.layer_bytes),
                    "seconds": time.perf_counter() - started,
                    "optimal": plan.guarantee == "optimal",
                }
            )
            if out[-1]["seconds"] > limit_s:
                break
    return out


def synthetic_requests(
    rate_per_min: float, life_min: int, life_max: int, total_minutes: int, seed: int
) -> list[seed004_data.Request]:
    """Requests drawn as the seed's generator draws them (models.json ->
    requests.generator): Poisson(rate) arrivals each minute, a type uniform
    over the 24 images, a lifetime uniform in [life_min, life_max] minutes."""
    rng = random.Random(seed)
    types = [f"{kind}{n}" for kind in ("yolo", "audio") for n in range(1, 13)]
    requests: list[seed004_data.Request] = []
    for minute in range(total_minutes):
        # Poisson by inversion: fine for the seed's rates of 3 and 5.
        count, p, threshold = 0, 1.0, math.exp(-rate_per_min)
        while True:
            p *= rng.random()
            if p <= threshold:
                break
            count += 1
        for _ in range(count):
            requests.append(
                seed004_data.Request(rng.choice(types), minute, rng.randint(life_min, life_max))
            )
    return requests


def tune_density_floor(
    folder: Path,
    fractions: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5),
    traces: int = 20,
) -> dict[str, Any]:
    """The density floor chosen on synthetic traces from the seed's generator
    (never on its request files): mean sustained saving of the exact planner
    at each floor, and of the seed's DP, under LRU, per request rate."""
    raw = seed004_data.load_models(folder)
    catalog = seed004_data.load_catalog(folder)
    out: dict[str, Any] = {}
    for path in (seed004_data.request_files(folder)[0], seed004_data.request_files(folder)[-1]):
        settings = ReplaySettings.for_file(path, raw)
        models = Seed004Models.from_json(raw, settings.era)
        match = FILE_NAME.search(path.name)
        assert match is not None
        rate, life_min, life_max, total, _ = (int(g) for g in match.groups())
        base = ValueModel.for_file(path)
        saved: dict[str, list[float]] = defaultdict(list)
        for seed in range(traces):
            requests = synthetic_requests(rate, life_min, life_max, total, 1000 + seed)
            runs: list[tuple[str, str, ValueModel]] = [("seed_dp", "seed_dp", base)]
            runs += [
                (f"exact@{f:g}", "exact", dataclasses.replace(base, density_floor=f))
                for f in fractions
            ]
            for label, planner, values in runs:
                states = replay_placement(
                    requests, catalog, models, settings, planner, EvictionPolicy.LRU, values
                )
                saved[label].append(
                    statistics.fmean(
                        sum(models.saving_kbps[i.kind] for i in s.instances if i.on_gateway)
                        for s in states
                    )
                )
        out[f"rate_{rate}"] = {label: statistics.fmean(v) for label, v in saved.items()}
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="seed004 folder")
    parser.add_argument("--out", type=Path, default=Path("bench-results/seed004"))
    parser.add_argument("--files", nargs="*", help="request file stems (default: all)")
    parser.add_argument("--exact-scaling", action="store_true")
    args = parser.parse_args(argv)
    folder = seed004_data.data_dir(args.data)
    files = seed004_data.request_files(folder)
    if args.files:
        files = [f for f in files if f.stem in set(args.files)]
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[MinuteRow] = []
    for path in files:
        print(f"replaying {path.name} ...", file=sys.stderr, flush=True)
        rows += replay_file(path, folder)
    summary = summarise(rows)
    write_minutes(rows, args.out / "minutes.csv")
    result: dict[str, Any] = {"data": str(folder), "configurations": summary}
    if args.exact_scaling:
        result["exact_scaling"] = exact_scaling()
    import orjson

    (args.out / "summary.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    (args.out / "comparison.md").write_text(comparison_table(summary, folder))
    plot(rows, args.out / "seed004.png")
    print(f"wrote {args.out}/minutes.csv, summary.json, comparison.md, seed004.png")


if __name__ == "__main__":
    main()
