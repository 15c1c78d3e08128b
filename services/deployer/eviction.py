"""Which cached images to remove, and in what order.

The engine removes images, not layers: removing an image frees the layers no
other image on disk holds. So the policy orders images (the download
planner's `eviction_order`: LRU, MRU, LFU, MFU over when an image was last
pulled or started and how many containers started with it; ties: by key),
and each removal frees what only that image held. The images to keep (of
running, starting, stopped or waiting analytics, and of a slot's chosen
pulls) are never in the order and their layers always stay; the engine
refuses to remove an image a container uses anyway (never forced). Layer by
layer, as the seed evicts, would free a shared base only by removing every
image above it. Pure: the caller lists the images and removes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from services.deployer.download_planner import CachedLayer, EvictionPolicy, eviction_order


@dataclass(frozen=True, slots=True)
class CachedImage:
    """An image on disk: its key (the engine's id) and its layers, base first."""

    key: str
    layers: tuple[str, ...]


@dataclass(slots=True)
class UsageBook:
    """When each image was last used (pulled or a container started with it)
    and how many containers started with it, as the eviction policies need.
    Kept in memory: after a restart every cached image starts unused."""

    last_used: dict[str, float] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)

    def pulled(self, image: str, when: float) -> None:
        self.last_used[image] = max(self.last_used.get(image, when), when)

    def started(self, image: str, when: float) -> None:
        self.last_used[image] = max(self.last_used.get(image, when), when)
        self.starts[image] = self.starts.get(image, 0) + 1

    def forget(self, image: str) -> None:
        self.last_used.pop(image, None)
        self.starts.pop(image, None)


def held_bytes(images: Iterable[CachedImage], layer_bytes: Mapping[str, int]) -> int:
    """Bytes of every layer some image holds, each once."""
    layers = {layer for image in images for layer in image.layers}
    return sum(layer_bytes.get(layer, 0) for layer in layers)


def usage_entries(
    images: Sequence[CachedImage],
    layer_bytes: Mapping[str, int],
    usage: UsageBook,
    names: Mapping[str, str],
) -> dict[str, CachedLayer]:
    """Each cached image as the planner's eviction order sees an entry: its
    bytes, when it was last used, how many containers started with it.
    `names` maps an image's key to its name in the usage book."""
    return {
        image.key: CachedLayer(
            held_bytes([image], layer_bytes),
            usage.last_used.get(names.get(image.key, image.key), 0.0),
            usage.starts.get(names.get(image.key, image.key), 0),
            0,
        )
        for image in images
    }


@dataclass(frozen=True, slots=True)
class Eviction:
    key: str
    freed_bytes: int


def images_to_evict(
    images: Sequence[CachedImage],
    entries: Mapping[str, CachedLayer],
    keep: frozenset[str],
    policy: EvictionPolicy,
    bytes_to_free: int,
    layer_bytes: Mapping[str, int],
) -> list[Eviction]:
    """Images not in `keep` to remove, in the policy's order, until
    `bytes_to_free` are freed or none is left. An image frees the layers no
    remaining image holds, so a kept image's layers always stay."""
    remaining = {image.key: image for image in images}
    out: list[Eviction] = []
    freed = 0
    for key in eviction_order(entries, keep, policy):
        if freed >= bytes_to_free:
            break
        before = held_bytes(remaining.values(), layer_bytes)
        del remaining[key]
        gained = before - held_bytes(remaining.values(), layer_bytes)
        out.append(Eviction(key, gained))
        freed += gained
    return out


def choose_evictions(
    images: Sequence[CachedImage],
    layer_bytes: Mapping[str, int],
    usage: UsageBook,
    names: Mapping[str, str],
    keep: frozenset[str],
    policy: EvictionPolicy,
    bytes_to_free: int,
) -> list[Eviction]:
    """`images_to_evict` in the order the usage book gives the policy."""
    entries = usage_entries(images, layer_bytes, usage, names)
    return images_to_evict(images, entries, keep, policy, bytes_to_free, layer_bytes)


def threshold_bytes(used: int, budget: int, start: float, target: float) -> int:
    """What to free when the cache passes `start` x budget: down to `target` x budget."""
    if used <= start * budget:
        return 0
    return used - math.floor(target * budget)
