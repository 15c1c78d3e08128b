"""Which cached images the deployer removes (services/deployer/eviction.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.deployer.download_planner import EvictionPolicy
from services.deployer.eviction import (
    CachedImage,
    UsageBook,
    held_bytes,
    images_to_evict,
    threshold_bytes,
    usage_entries,
)

SIZES = {"base": 100, "rt-a": 40, "rt-b": 40, "m1": 10, "m2": 20, "m3": 30, "solo": 50}
IMAGES = [
    CachedImage("a1", ("base", "rt-a", "m1")),
    CachedImage("a2", ("base", "rt-a", "m2")),
    CachedImage("b3", ("base", "rt-b", "m3")),
    CachedImage("solo", ("solo",)),
]


def _usage(order: list[str]) -> UsageBook:
    book = UsageBook()
    for when, image in enumerate(order):
        book.started(image, float(when))
    return book


def _evict(policy: EvictionPolicy, keep: set[str], to_free: int, book: UsageBook) -> list[str]:
    entries = usage_entries(IMAGES, SIZES, book, {})
    evictions = images_to_evict(IMAGES, entries, frozenset(keep), policy, to_free, SIZES)
    return [e.key for e in evictions]


def test_lru_removes_the_least_recently_started_image_first_and_stops_when_enough() -> None:
    book = _usage(["solo", "b3", "a1", "a2"])
    assert _evict(EvictionPolicy.LRU, set(), 50, book) == ["solo"]
    assert _evict(EvictionPolicy.MRU, set(), 20, book) == ["a2"]
    # a2 frees only m2 (a1 holds base and rt-a too), so a1 goes next.
    assert _evict(EvictionPolicy.MRU, set(), 25, book) == ["a2", "a1"]


def test_lfu_and_mfu_count_starts() -> None:
    book = _usage(["a1", "a1", "a1", "b3", "b3", "solo"])
    assert _evict(EvictionPolicy.LFU, set(), 1, book) == ["a2"]  # never started
    assert _evict(EvictionPolicy.MFU, set(), 1, book) == ["a1"]
    # a1 frees only m1 (a2 holds base and rt-a too); b3 next frees rt-b, m3.
    assert _evict(EvictionPolicy.MFU, set(), 11, book) == ["a1", "b3"]


def test_a_running_image_is_never_evicted_and_its_shared_layers_stay() -> None:
    book = _usage(["a1", "a2", "b3", "solo"])
    evicted = _evict(EvictionPolicy.LRU, {"a1"}, 10_000, book)
    assert "a1" not in evicted and set(evicted) == {"a2", "b3", "solo"}
    left = [image for image in IMAGES if image.key not in evicted]
    assert left == [IMAGES[0]] and held_bytes(left, SIZES) == 150  # base, rt-a, m1


def test_threshold_starts_above_the_start_share_and_frees_to_the_target() -> None:
    assert threshold_bytes(80, 100, 0.8, 0.6) == 0
    assert threshold_bytes(81, 100, 0.8, 0.6) == 21


@settings(max_examples=200, deadline=None)
@given(
    keep=st.sets(st.sampled_from([image.key for image in IMAGES])),
    to_free=st.integers(0, 400),
    policy=st.sampled_from(list(EvictionPolicy)),
    starts=st.lists(st.sampled_from([image.key for image in IMAGES]), max_size=8),
)
def test_eviction_frees_what_it_says_never_a_kept_layer_and_enough_when_it_can(
    keep: set[str], to_free: int, policy: EvictionPolicy, starts: list[str]
) -> None:
    entries = usage_entries(IMAGES, SIZES, _usage(starts), {})
    kept = frozenset(layer for image in IMAGES if image.key in keep for layer in image.layers)
    evictions = images_to_evict(IMAGES, entries, frozenset(keep), policy, to_free, SIZES)
    gone = {e.key for e in evictions}
    left = [image for image in IMAGES if image.key not in gone]
    assert not gone & keep
    assert held_bytes(IMAGES, SIZES) - held_bytes(left, SIZES) == sum(
        e.freed_bytes for e in evictions
    )
    assert kept <= {layer for image in left for layer in image.layers}
    evictable = held_bytes(IMAGES, SIZES) - held_bytes(
        [image for image in IMAGES if image.key in keep], SIZES
    )
    assert sum(e.freed_bytes for e in evictions) >= min(to_free, evictable)
