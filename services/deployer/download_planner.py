"""Which requested analytics' images to download in a slot, and which cached
layers to evict before it.

A request hosted in the cloud sends its raw data over the uplink; once its
image is on the gateway it uploads only results, which saves
`PendingRequest.saving_kbps`. Every pending request of an image moves to the
gateway when the image is there, so the planner chooses *images*: the value
of an image is the sum of its pending requests' savings, its cost the
compressed bytes of its layers not yet on disk, and a layer shared by several
chosen images is downloaded (and counted) once. The budget of a slot is the
smaller of the free disk and what the download link carries in the slot.

That is a set-union knapsack. Solvers:

- `plan_exact`: a MILP (scipy's HiGHS), optimal. On the seed's catalogue (24
  images, 247 layers) it answers in milliseconds (60 ms for 100 pending
  requests on an empty disk). Within 1 s (`tools.seed004_experiment
  --exact-scaling`, this 2-core machine): about 100 images over 1000 layers
  when images share whole base stacks as Docker images do (200 over 2100
  took 1.4 s); only about 24 images over 120 layers when every image draws 20
  layers at random from a common pool (dense, unstructured sharing).
- `plan_fptas`: profit scaling on each image's new bytes counted whole. When
  the images' new layers are pairwise disjoint the problem is a 0/1 knapsack
  and the answer is >= (1 - eps) x OPT. With shared layers counting an image
  whole overstates its cost, so the answer is feasible but carries no
  guarantee (`DownloadPlan.guarantee == "none"`): the set-union knapsack has
  no known FPTAS (it contains densest-k-subgraph).
- `plan_greedy`: by saving per *new* byte, re-priced after every pick so that
  layers already chosen cost nothing, then compared with the best single image.
- `plan_seed_dp`: the seed's baseline, an exact 0/1 knapsack over entries (at
  most two per requested image, each worth one request's saving) whose weight
  is the image's new bytes whole, so a layer two chosen images share is
  counted twice.

No I/O here: the caller passes the catalogue and the disk state.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

# The seed's replacement thresholds (models.json -> replacement): eviction
# starts above 80 % of the disk and frees down to 60 %.
DEFAULT_TRIGGER_FRACTION = 0.8
DEFAULT_TARGET_FRACTION = 0.6
SEED_ENTRIES_PER_IMAGE = 2  # models.json -> ida.value_kbps_per_type.second_instance_adds


@dataclass(frozen=True, slots=True)
class LayerCatalog:
    """Compressed size of every layer and the layers of every image (base first)."""

    layer_bytes: Mapping[str, int]
    image_layers: Mapping[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        for image, layers in self.image_layers.items():
            missing = [layer for layer in layers if layer not in self.layer_bytes]
            if missing:
                raise ValueError(f"{image}: layers without a size: {missing}")
        if any(size < 0 for size in self.layer_bytes.values()):
            raise ValueError("layer sizes must be >= 0")

    def image_bytes(self, image: str) -> int:
        return sum(self.layer_bytes[layer] for layer in set(self.image_layers[image]))

    def bytes_of(self, layers: Iterable[str]) -> int:
        return sum(self.layer_bytes[layer] for layer in set(layers))


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A requested analytic still hosted in the cloud."""

    image: str
    saving_kbps: float


@dataclass(frozen=True, slots=True)
class ImageChoice:
    """One candidate image: the summed saving of its requests and its layers not on disk."""

    image: str
    value_kbps: float
    requests: int
    new_layers: frozenset[str]


@dataclass(frozen=True, slots=True)
class DownloadProblem:
    catalog: LayerCatalog
    requests: tuple[PendingRequest, ...]
    on_disk: frozenset[str]
    capacity_bytes: int

    def __post_init__(self) -> None:
        if self.capacity_bytes < 0:
            raise ValueError("capacity_bytes must be >= 0")
        for request in self.requests:
            if request.image not in self.catalog.image_layers:
                raise ValueError(f"unknown image {request.image!r}")
            if not (math.isfinite(request.saving_kbps) and request.saving_kbps >= 0):
                raise ValueError(f"{request.image}: saving must be finite and >= 0")

    def choices(self) -> tuple[ImageChoice, ...]:
        """Requests grouped by image, in first-request order."""
        value: dict[str, float] = defaultdict(float)
        count: dict[str, int] = defaultdict(int)
        for request in self.requests:
            value[request.image] += request.saving_kbps
            count[request.image] += 1
        return tuple(
            ImageChoice(
                image,
                value[image],
                count[image],
                frozenset(self.catalog.image_layers[image]) - self.on_disk,
            )
            for image in value
        )

    def new_bytes(self, choice: ImageChoice) -> int:
        return self.catalog.bytes_of(choice.new_layers)


@dataclass(frozen=True, slots=True)
class DownloadPlan:
    solver: str
    images: tuple[str, ...]
    layers: tuple[str, ...]  # layers to download, each once, sorted
    new_bytes: int
    saved_kbps: float  # summed saving of every pending request of the chosen images
    guarantee: str  # "optimal", "1-eps" or "none"
    solve_seconds: float
    believed_kbps: float | None = None  # the seed DP's own objective, when it differs


def slot_capacity_bytes(
    disk_bytes: int, used_bytes: int, downlink_kbps: float, slot_seconds: float
) -> int:
    """The smaller of the free disk and the bytes the link carries in a slot.

    (The seed compares the link's bits with bytes, models.json ->
    ida.capacity_bytes; here both are bytes.)
    """
    link_bytes = math.floor(downlink_kbps * 1000.0 / 8.0 * slot_seconds)
    return max(0, min(disk_bytes - used_bytes, link_bytes))


def _finish(
    solver: str,
    problem: DownloadProblem,
    chosen: Iterable[ImageChoice],
    guarantee: str,
    started: float,
    believed: float | None = None,
) -> DownloadPlan:
    picked = sorted(chosen, key=lambda choice: choice.image)
    layers: set[str] = set()
    for choice in picked:
        layers |= choice.new_layers
    new_bytes = problem.catalog.bytes_of(layers)
    if new_bytes > problem.capacity_bytes:
        raise AssertionError(f"{solver}: plan of {new_bytes} B exceeds {problem.capacity_bytes} B")
    return DownloadPlan(
        solver=solver,
        images=tuple(choice.image for choice in picked),
        layers=tuple(sorted(layers)),
        new_bytes=new_bytes,
        saved_kbps=math.fsum(choice.value_kbps for choice in picked),
        guarantee=guarantee,
        solve_seconds=time.perf_counter() - started,
        believed_kbps=believed,
    )


def _split_free(
    problem: DownloadProblem,
) -> tuple[list[ImageChoice], list[ImageChoice]]:
    """Images with nothing to download (always taken) and the rest that fit alone."""
    free: list[ImageChoice] = []
    paid: list[ImageChoice] = []
    for choice in problem.choices():
        if not choice.new_layers or problem.new_bytes(choice) == 0:
            free.append(choice)
        elif problem.new_bytes(choice) <= problem.capacity_bytes and choice.value_kbps > 0:
            paid.append(choice)
    return free, paid


def plan_exact(problem: DownloadProblem, time_limit_s: float | None = None) -> DownloadPlan:
    """Optimal plan: max sum v_i x_i s.t. x_i <= y_g for every shared layer
    group g of image i, sum own_i x_i + sum s_g y_g <= capacity, x and y
    binary (HiGHS branch and cut).

    Layers are grouped by the set of candidate images that need them: a
    group only one image needs is that image's own cost (no variable); the
    layers every image of the same set needs become one variable. Docker
    images share whole base stacks, so this leaves a handful of variables
    beyond the images."""
    # Imported here: only the exact solver needs scipy (the deploy extra has it).
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_array

    started = time.perf_counter()
    free, paid = _split_free(problem)
    if not paid:
        return _finish("exact", problem, free, "optimal", started)
    owners: dict[str, list[int]] = defaultdict(list)
    for i, choice in enumerate(paid):
        for layer in choice.new_layers:
            owners[layer].append(i)
    own = np.zeros(len(paid))
    groups: dict[tuple[int, ...], float] = defaultdict(float)
    for layer, images in owners.items():
        size = float(problem.catalog.layer_bytes[layer])
        if len(images) == 1:
            own[images[0]] += size
        else:
            groups[tuple(sorted(images))] += size
    shared = sorted(groups)
    n_vars = len(paid) + len(shared)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    row = 0
    for g, sharing in enumerate(shared):
        for i in sharing:
            rows += [row, row]
            cols += [i, len(paid) + g]
            vals += [1.0, -1.0]
            row += 1
    capacity_row = np.zeros((1, n_vars))
    scale = (
        float(problem.capacity_bytes) or 1.0
    )  # a unit-scale row keeps HiGHS's tolerances relative
    capacity_row[0, : len(paid)] = own / scale
    capacity_row[0, len(paid) :] = np.array([groups[g] for g in shared]) / scale
    objective = np.zeros(n_vars)
    objective[: len(paid)] = [-choice.value_kbps for choice in paid]
    options: dict[str, float] = {"mip_rel_gap": 0.0}
    if time_limit_s is not None:
        options["time_limit"] = time_limit_s
    limit = float(problem.capacity_bytes)
    for _ in range(4):
        constraints = [LinearConstraint(capacity_row, -np.inf, limit / scale)]
        if row:
            linking = coo_array((vals, (rows, cols)), shape=(row, n_vars))
            constraints.append(LinearConstraint(linking, -np.inf, 0.0))
        result = milp(
            objective,
            constraints=constraints,
            integrality=np.ones(n_vars),
            bounds=Bounds(0, 1),
            options=options,
        )
        if result.x is None:
            raise RuntimeError(f"HiGHS found no plan: {result.message}")
        chosen = [choice for i, choice in enumerate(paid) if result.x[i] > 0.5]
        used = problem.catalog.bytes_of(set().union(*(c.new_layers for c in chosen)))
        if used <= problem.capacity_bytes:
            guarantee = "optimal" if result.status == 0 else "none"
            return _finish("exact", problem, [*free, *chosen], guarantee, started)
        limit -= used - problem.capacity_bytes  # the solver's tolerance let bytes through
    raise RuntimeError("HiGHS kept exceeding the capacity within its tolerance")


def _knapsack_by_profit(values: Sequence[int], weights: Sequence[int], capacity: int) -> list[int]:
    """Exact 0/1 knapsack over integer profits: the least weight per profit."""
    top = sum(values)
    least = np.full(top + 1, np.inf)
    least[0] = 0.0
    taken = np.zeros((len(values), top + 1), dtype=bool)
    for i, (value, weight) in enumerate(zip(values, weights, strict=True)):
        if value == 0:
            continue
        candidate = np.full(top + 1, np.inf)
        candidate[value:] = least[: top + 1 - value] + weight
        better = candidate < least
        taken[i] = better
        least = np.where(better, candidate, least)
    best = int(np.nonzero(least <= capacity)[0].max())
    picked: list[int] = []
    for i in range(len(values) - 1, -1, -1):
        if taken[i, best]:
            picked.append(i)
            best -= values[i]
    return picked


def plan_fptas(problem: DownloadProblem, eps: float = 0.1) -> DownloadPlan:
    """(1 - eps) x OPT when the candidates' new layers are pairwise disjoint;
    otherwise a feasible plan with no guarantee (shared layers counted whole)."""
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    started = time.perf_counter()
    free, paid = _split_free(problem)
    if not paid:
        return _finish("fptas", problem, free, "optimal", started)
    seen: set[str] = set()
    disjoint = True
    for choice in paid:
        if seen & choice.new_layers:
            disjoint = False
        seen |= choice.new_layers
    v_max = max(choice.value_kbps for choice in paid)
    unit = eps * v_max / len(paid)
    scaled = [math.floor(choice.value_kbps / unit) for choice in paid]
    weights = [problem.new_bytes(choice) for choice in paid]
    picked = _knapsack_by_profit(scaled, weights, problem.capacity_bytes)
    guarantee = "1-eps" if disjoint else "none"
    return _finish("fptas", problem, [*free, *(paid[i] for i in picked)], guarantee, started)


def plan_greedy(problem: DownloadProblem) -> DownloadPlan:
    """Highest saving per new byte first, new bytes re-priced after each pick."""
    started = time.perf_counter()
    free, paid = _split_free(problem)
    sizes = problem.catalog.layer_bytes
    have: set[str] = set()
    left = problem.capacity_bytes
    chosen: list[ImageChoice] = []
    remaining = list(paid)
    while remaining:
        best_ratio, best_index, best_cost = -1.0, -1, 0
        for i, choice in enumerate(remaining):
            cost = sum(sizes[layer] for layer in choice.new_layers - have)
            if cost > left:
                continue
            ratio = math.inf if cost == 0 else choice.value_kbps / cost
            if ratio > best_ratio:
                best_ratio, best_index, best_cost = ratio, i, cost
        if best_index < 0:
            break
        choice = remaining.pop(best_index)
        chosen.append(choice)
        have |= choice.new_layers
        left -= best_cost
    single = max(paid, key=lambda choice: choice.value_kbps, default=None)
    greedy_value = math.fsum(choice.value_kbps for choice in chosen)
    if single is not None and single.value_kbps > greedy_value:
        chosen = [single]  # the classic fix: one large saving can beat the ratio order
    return _finish("greedy", problem, [*free, *chosen], "none", started)


def plan_seed_dp(
    problem: DownloadProblem, entries_per_image: int = SEED_ENTRIES_PER_IMAGE
) -> DownloadPlan:
    """The seed's IDA DP: exact 0/1 knapsack over entries (up to
    `entries_per_image` per image, one request's saving each), every entry
    weighing its image's new bytes whole, so shared layers count again."""
    started = time.perf_counter()
    entries: list[tuple[ImageChoice, float, int]] = []
    for choice in problem.choices():
        per_request = choice.value_kbps / choice.requests
        weight = problem.new_bytes(choice)
        entries += [(choice, per_request, weight)] * min(choice.requests, entries_per_image)
    # Pareto list of (weight, value, picked entries): exact with any weights.
    front: list[tuple[int, float, tuple[int, ...]]] = [(0, 0.0, ())]
    for k, (_, value, weight) in enumerate(entries):
        grown = [
            (w + weight, v + value, (*picked, k))
            for w, v, picked in front
            if w + weight <= problem.capacity_bytes
        ]
        merged = sorted(front + grown, key=lambda item: (item[0], -item[1]))
        front = []
        for item in merged:
            if not front or item[1] > front[-1][1]:
                front.append(item)
    _, believed, picked = front[-1]
    images = {entries[k][0].image: entries[k][0] for k in picked}
    return _finish("seed_dp", problem, images.values(), "none", started, believed)


def without_low_density(problem: DownloadProblem, fraction: float) -> DownloadProblem:
    """The problem without the images whose saving per new byte is below
    `fraction` x the best candidate's (images with nothing to download stay).

    A slot's optimum spends any spare disk on images that save little per
    byte; their layers then hold disk that later, denser requests need. This
    floor keeps them out (0 keeps everything)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    density: dict[str, float] = {}
    for choice in problem.choices():
        size = problem.new_bytes(choice)
        if size > 0:
            density[choice.image] = choice.value_kbps / size
    if not density or fraction == 0:
        return problem
    floor = fraction * max(density.values())
    kept = tuple(r for r in problem.requests if density.get(r.image, math.inf) >= floor)
    return DownloadProblem(problem.catalog, kept, problem.on_disk, problem.capacity_bytes)


PLANNERS = {
    "exact": plan_exact,
    "fptas": plan_fptas,
    "greedy": plan_greedy,
    "seed_dp": plan_seed_dp,
}


# ---------------------------------------------------------------- eviction


class EvictionPolicy(StrEnum):
    LRU = "LRU"
    MRU = "MRU"
    LFU = "LFU"
    MFU = "MFU"


@dataclass(frozen=True, slots=True)
class CachedLayer:
    """A layer on disk: its size, when a container last started with it, how
    often one did, and its height in its image (top layers go first on ties)."""

    size_bytes: int
    last_used: float
    uses: int
    height: int


def eviction_order(
    cache: Mapping[str, CachedLayer], keep: frozenset[str], policy: EvictionPolicy
) -> list[str]:
    """Cached layers not in `keep`, first to go first: least/most recently
    used (LRU/MRU) or least/most often used (LFU/MFU); ties: the layer higher
    in its image first, then by id."""
    sign = {EvictionPolicy.LRU: 1, EvictionPolicy.MRU: -1}
    by_count = {EvictionPolicy.LFU: 1, EvictionPolicy.MFU: -1}

    def key(layer_id: str) -> tuple[float, int, str]:
        layer = cache[layer_id]
        if policy in sign:
            primary = sign[policy] * layer.last_used
        else:
            primary = float(by_count[policy] * layer.uses)
        return primary, -layer.height, layer_id

    return sorted((lid for lid in cache if lid not in keep), key=key)


def choose_evictions(
    cache: Mapping[str, CachedLayer],
    in_use: frozenset[str],
    disk_bytes: int,
    policy: EvictionPolicy,
    trigger_fraction: float = DEFAULT_TRIGGER_FRACTION,
    target_fraction: float = DEFAULT_TARGET_FRACTION,
) -> tuple[str, ...]:
    """Layers to remove, in order: nothing while the cache is at or below
    trigger x disk; above it, layers no running container uses, in policy
    order, until the cache is at or below target x disk (or nothing is left
    to remove)."""
    if not 0 <= target_fraction <= trigger_fraction:
        raise ValueError("need 0 <= target_fraction <= trigger_fraction")
    used = sum(layer.size_bytes for layer in cache.values())
    if used <= trigger_fraction * disk_bytes:
        return ()
    return make_room(cache, in_use, policy, used - math.floor(target_fraction * disk_bytes))


def make_room(
    cache: Mapping[str, CachedLayer],
    keep: frozenset[str],
    policy: EvictionPolicy,
    bytes_to_free: int,
) -> tuple[str, ...]:
    """Layers to remove, in policy order, until `bytes_to_free` are freed (or
    every layer outside `keep` is gone)."""
    evicted: list[str] = []
    freed = 0
    for layer_id in eviction_order(cache, keep, policy):
        if freed >= bytes_to_free:
            break
        evicted.append(layer_id)
        freed += cache[layer_id].size_bytes
    return tuple(evicted)
