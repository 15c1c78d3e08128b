"""Which cached images to remove, and in what order.

The engine removes images, not layers: removing an image frees the layers no
other image on disk holds. The order is the download planner's layer order
(`eviction_order`: LRU, MRU, LFU, MFU over when and how often a container
started with a layer); the first layer in that order that some image still
holds decides which images go next (every image holding it, since the layer
is freed only with the last of them). Layers of the images to keep (those of
running, starting or downloading analytics, and of the slot's chosen pulls)
are never in the order, so an image that holds only such layers frees
nothing and is never chosen; the engine refuses to remove an image a
container uses anyway (never forced). Pure: the caller lists the images and
removes them.
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


def layer_cache(
    images: Sequence[CachedImage],
    layer_bytes: Mapping[str, int],
    usage: UsageBook,
    names: Mapping[str, str],
) -> dict[str, CachedLayer]:
    """Each layer on disk as the planner's eviction sees it: last used = the
    latest use of an image holding it, uses = their starts summed, height =
    its highest position. `names` maps an image's key to its usage name."""
    cache: dict[str, CachedLayer] = {}
    for image in images:
        name = names.get(image.key, image.key)
        last = usage.last_used.get(name, 0.0)
        starts = usage.starts.get(name, 0)
        for height, layer in enumerate(image.layers):
            old = cache.get(layer)
            cache[layer] = CachedLayer(
                layer_bytes.get(layer, 0),
                max(last, old.last_used) if old else last,
                starts + (old.uses if old else 0),
                max(height, old.height) if old else height,
            )
    return cache


@dataclass(frozen=True, slots=True)
class Eviction:
    key: str
    freed_bytes: int


def images_to_evict(
    images: Sequence[CachedImage],
    cache: Mapping[str, CachedLayer],
    keep_layers: frozenset[str],
    policy: EvictionPolicy,
    bytes_to_free: int,
) -> list[Eviction]:
    """Images to remove, in order, until `bytes_to_free` are freed or nothing
    outside `keep_layers` is left."""
    remaining = {image.key: image for image in images}
    out: list[Eviction] = []
    freed = 0
    for layer in eviction_order(cache, keep_layers, policy):
        if freed >= bytes_to_free:
            break
        holders = sorted(key for key, image in remaining.items() if layer in image.layers)
        for key in holders:
            before = held_bytes(remaining.values(), _sizes(cache))
            del remaining[key]
            gained = before - held_bytes(remaining.values(), _sizes(cache))
            out.append(Eviction(key, gained))
            freed += gained
    return out


def _sizes(cache: Mapping[str, CachedLayer]) -> dict[str, int]:
    return {layer: entry.size_bytes for layer, entry in cache.items()}


def threshold_bytes(used: int, budget: int, start: float, target: float) -> int:
    """What to free when the cache passes `start` x budget: down to `target` x budget."""
    if used <= start * budget:
        return 0
    return used - math.floor(target * budget)
