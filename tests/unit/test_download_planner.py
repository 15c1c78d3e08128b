"""Download planner and eviction: properties on random catalogues (hypothesis)."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from services.deployer.download_planner import (
    CachedLayer,
    DownloadProblem,
    EvictionPolicy,
    LayerCatalog,
    PendingRequest,
    choose_evictions,
    plan_exact,
    plan_fptas,
    plan_greedy,
    plan_seed_dp,
    slot_capacity_bytes,
    without_low_density,
)


@st.composite
def problems(draw: st.DrawFn, disjoint: bool = False) -> DownloadProblem:
    n_images = draw(st.integers(1, 7))
    if disjoint:
        per_image = [draw(st.integers(1, 4)) for _ in range(n_images)]
        ids = iter(f"l{k}" for k in range(sum(per_image)))
        image_layers = {
            f"i{i}": tuple(next(ids) for _ in range(c)) for i, c in enumerate(per_image)
        }
    else:
        pool = [f"l{k}" for k in range(draw(st.integers(1, 10)))]
        image_layers = {
            f"i{i}": tuple(
                draw(st.lists(st.sampled_from(pool), min_size=1, max_size=5, unique=True))
            )
            for i in range(n_images)
        }
    layers = sorted({lid for stack in image_layers.values() for lid in stack})
    sizes = {lid: draw(st.integers(0, 1000)) for lid in layers}
    on_disk = frozenset(draw(st.lists(st.sampled_from(layers), unique=True, max_size=3)))
    requests = tuple(
        PendingRequest(draw(st.sampled_from(sorted(image_layers))), draw(st.integers(0, 700)) / 7)
        for _ in range(draw(st.integers(0, 10)))
    )
    capacity = draw(st.integers(0, 3000))
    return DownloadProblem(LayerCatalog(sizes, image_layers), requests, on_disk, capacity)


def brute_force(problem: DownloadProblem) -> float:
    """Best summed saving over every subset of images, shared layers once."""
    choices = problem.choices()
    best = 0.0
    for r in range(len(choices) + 1):
        for subset in itertools.combinations(choices, r):
            layers = set().union(*(c.new_layers for c in subset)) if subset else set()
            if problem.catalog.bytes_of(layers) <= problem.capacity_bytes:
                best = max(best, math.fsum(c.value_kbps for c in subset))
    return best


HEURISTICS = (plan_greedy, plan_seed_dp, lambda p: plan_fptas(p, 0.2))


@settings(max_examples=150, deadline=None)
@given(problems())
def test_exact_is_optimal_and_beats_every_heuristic(problem: DownloadProblem) -> None:
    exact = plan_exact(problem)
    assert exact.guarantee == "optimal"
    assert math.isclose(exact.saved_kbps, brute_force(problem), rel_tol=1e-9, abs_tol=1e-9)
    for heuristic in HEURISTICS:
        assert heuristic(problem).saved_kbps <= exact.saved_kbps + 1e-9


@settings(max_examples=150, deadline=None)
@given(problems(), st.sampled_from([0.05, 0.2, 0.5]))
def test_no_plan_exceeds_the_budget_and_shared_layers_count_once(
    problem: DownloadProblem, eps: float
) -> None:
    for plan in (
        plan_exact(problem),
        plan_greedy(problem),
        plan_seed_dp(problem),
        plan_fptas(problem, eps),
    ):
        wanted = (
            set().union(*(set(problem.catalog.image_layers[image]) for image in plan.images))
            - problem.on_disk
        )
        assert set(plan.layers) == wanted  # each needed layer once, nothing on disk
        assert len(plan.layers) == len(set(plan.layers))
        assert plan.new_bytes == sum(problem.catalog.layer_bytes[lid] for lid in wanted)
        assert plan.new_bytes <= problem.capacity_bytes


@settings(max_examples=150, deadline=None)
@given(problems(disjoint=True), st.sampled_from([0.05, 0.2, 0.5]))
def test_fptas_is_within_eps_when_images_share_no_new_layer(
    problem: DownloadProblem, eps: float
) -> None:
    plan = plan_fptas(problem, eps)
    assert plan.guarantee in {"1-eps", "optimal"}
    assert plan.saved_kbps >= (1 - eps) * plan_exact(problem).saved_kbps - 1e-9


def test_shared_layer_is_counted_once_where_the_seed_dp_counts_it_twice() -> None:
    # Two images share a 600 B base; each adds 100 B. Budget 800 B: both fit
    # (800 B once shared), but counted whole they weigh 1400 B.
    catalog = LayerCatalog(
        {"base": 600, "a": 100, "b": 100}, {"x": ("base", "a"), "y": ("base", "b")}
    )
    problem = DownloadProblem(
        catalog, (PendingRequest("x", 10.0), PendingRequest("y", 10.0)), frozenset(), 800
    )
    for plan in (plan_exact(problem), plan_greedy(problem)):
        assert plan.images == ("x", "y")
        assert plan.new_bytes == 800
        assert plan.saved_kbps == 20.0
    assert plan_seed_dp(problem).saved_kbps == 10.0
    assert plan_fptas(problem, 0.1).guarantee == "none"


def test_a_layer_on_disk_costs_nothing() -> None:
    catalog = LayerCatalog({"base": 900, "top": 50}, {"x": ("base", "top")})
    problem = DownloadProblem(catalog, (PendingRequest("x", 5.0),), frozenset({"base"}), 60)
    plan = plan_exact(problem)
    assert plan.images == ("x",)
    assert plan.layers == ("top",)
    assert plan.new_bytes == 50


def test_density_floor_drops_only_images_below_the_fraction_of_the_best() -> None:
    catalog = LayerCatalog(
        {"a": 100, "b": 100, "c": 1000, "d": 50},
        {"dense": ("a",), "half": ("b",), "sparse": ("c",), "cached": ("d",)},
    )
    requests = (
        PendingRequest("dense", 100.0),  # 1 kbit/s per byte
        PendingRequest("half", 50.0),  # 0.5: kept at a 0.5 floor
        PendingRequest("sparse", 400.0),  # 0.4: dropped
        PendingRequest("cached", 1.0),  # nothing to download: always kept
    )
    problem = DownloadProblem(catalog, requests, frozenset({"d"}), 10_000)
    kept = without_low_density(problem, 0.5)
    assert [r.image for r in kept.requests] == ["dense", "half", "cached"]
    assert without_low_density(problem, 0.0) == problem
    assert plan_exact(problem).images == ("cached", "dense", "half", "sparse")
    assert plan_exact(kept).images == ("cached", "dense", "half")


def test_slot_capacity_is_the_smaller_of_free_disk_and_link_bytes() -> None:
    # 100 Mbit/s for 300 s is 3.75 GB: the 3 GB disk binds.
    assert slot_capacity_bytes(3_000_000_000, 1_000_000_000, 100_000, 300) == 2_000_000_000
    # 1 Mbit/s for 300 s is 37.5 MB.
    assert slot_capacity_bytes(3_000_000_000, 0, 1000, 300) == 37_500_000
    assert slot_capacity_bytes(100, 200, 1000, 300) == 0


@st.composite
def caches(draw: st.DrawFn) -> tuple[dict[str, CachedLayer], frozenset[str], int]:
    n = draw(st.integers(0, 12))
    cache = {
        f"l{k}": CachedLayer(
            draw(st.integers(1, 500)),
            float(draw(st.integers(0, 20))),
            draw(st.integers(0, 5)),
            draw(st.integers(0, 10)),
        )
        for k in range(n)
    }
    in_use = frozenset(draw(st.lists(st.sampled_from(sorted(cache) or ["none"]), unique=True)))
    disk = draw(st.integers(1, 4000))
    return cache, in_use, disk


@settings(max_examples=300, deadline=None)
@given(caches(), st.sampled_from(list(EvictionPolicy)))
def test_eviction_spares_running_layers_and_frees_to_the_target(
    state: tuple[dict[str, CachedLayer], frozenset[str], int], policy: EvictionPolicy
) -> None:
    cache, in_use, disk = state
    evicted = choose_evictions(cache, in_use, disk, policy)
    used = sum(layer.size_bytes for layer in cache.values())
    assert not set(evicted) & in_use
    assert len(set(evicted)) == len(evicted)
    left = used - sum(cache[lid].size_bytes for lid in evicted)
    if used <= 0.8 * disk:
        assert evicted == ()
        return
    evictable = [lid for lid in cache if lid not in in_use]
    if left > 0.6 * disk:
        assert set(evicted) == set(evictable)  # it stopped only for lack of layers
    else:
        # No layer more than needed: without the last one it was still above 60 %.
        assert left + cache[evicted[-1]].size_bytes > 0.6 * disk


def test_eviction_orders_by_policy() -> None:
    cache = {
        "old_often": CachedLayer(100, 1.0, 5, 0),
        "new_rare": CachedLayer(100, 9.0, 1, 0),
        "mid": CachedLayer(100, 5.0, 3, 0),
    }
    # 300 B on a 330 B disk is above 80 %; 60 % is 198 B: two layers go.
    assert choose_evictions(cache, frozenset(), 330, EvictionPolicy.LRU) == ("old_often", "mid")
    assert choose_evictions(cache, frozenset(), 330, EvictionPolicy.MRU) == ("new_rare", "mid")
    assert choose_evictions(cache, frozenset(), 330, EvictionPolicy.LFU) == ("new_rare", "mid")
    assert choose_evictions(cache, frozenset(), 330, EvictionPolicy.MFU) == ("old_often", "mid")
    assert choose_evictions(cache, frozenset({"old_often"}), 330, EvictionPolicy.LRU) == (
        "mid",
        "new_rare",
    )
    assert choose_evictions(cache, frozenset(), 400, EvictionPolicy.LRU) == ()
