"""Download slots: every `download_slot_s` the queued requests are planned
together (download_planner.py) instead of pulled first come first served.

A slot, once the previous slot's pulls are done:

1. lists the images on disk from the gateway's registry; their layers'
   compressed sizes come from the registry's manifests (as the seed counts
   its disk: compressed layer bytes). The cache's budget is the image disk
   budget over `layer_expansion`.
2. when the cache passes `eviction_start_fraction` of its budget, removes
   images no analytic wants (not running, starting, downloading, stopped or
   queued with its image on disk) in the policy's order, down to
   `eviction_target_fraction` (eviction.py);
3. plans the waiting requests with the chosen solver: an image's value is
   the summed `upload_saving_kbps` of its requests, its cost the bytes of its
   layers no wanted image holds (layers only unwanted images hold count as
   free space, not as downloaded: they may be evicted); the capacity is the
   smaller of what the link carries in a slot (`downlink_kbps`, if set) and
   the budget less what wanted images hold;
4. removes, in the policy's order, the unwanted images the chosen pulls
   need the space of, and hands the chosen requests to the download workers.
   The rest stay queued with the reason.

A request whose image the registry does not know fails (a bad reference), as
does one whose image is larger than the whole budget; one the registry does
not answer for goes to the download workers, which retry with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from schemas.deploy import MAX_SLOT_ENTRIES, DownloadSlot, EvictedImage, EvictionCause
from schemas.topics import DEPLOYER
from services.deployer.admission import ImageRef, Refused, parse_image
from services.deployer.download_planner import (
    PLANNERS,
    DownloadPlan,
    DownloadProblem,
    EvictionPolicy,
    LayerCatalog,
    PendingRequest,
    plan_exact,
    plan_fptas,
    slot_capacity_bytes,
)
from services.deployer.engine import Engine, LocalImage
from services.deployer.eviction import (
    CachedImage,
    UsageBook,
    choose_evictions,
    held_bytes,
    threshold_bytes,
)
from services.deployer.layers import (
    ManifestUnknown,
    RegistryUnreachable,
    RemoteImage,
    fetch_remote_image,
)
from services.deployer.settings import DeployerSettings

log = logging.getLogger(__name__)
MIB = 1024 * 1024
FPTAS_EPS = 0.1


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """A queued analytic: what it pulls and what running it here saves."""

    analytic: str
    image: ImageRef
    saving_kbps: float


@dataclass(slots=True)
class SlotDecision:
    chosen: list[str] = field(default_factory=list)  # to the download workers, planned
    unplanned: list[str] = field(default_factory=list)  # to the download workers: no manifest
    deferred: dict[str, str] = field(default_factory=dict)  # stay queued: why
    failed: dict[str, str] = field(default_factory=dict)  # never fits, or no such image
    report: DownloadSlot | None = None


def planner_of(name: str, time_limit_s: float) -> Callable[[DownloadProblem], DownloadPlan]:
    if name == "exact":
        return lambda problem: plan_exact(problem, time_limit_s)
    if name == "fptas":
        return lambda problem: plan_fptas(problem, FPTAS_EPS)
    return PLANNERS[name]


def _mib(size: int) -> str:
    return f"{size / MIB:.2f} MiB"


class DownloadSlots:
    """The slot planner of one deployer: its view of the image cache, the
    manifests it has read, and when each image was last used."""

    def __init__(self, engine: Engine, settings: DeployerSettings) -> None:
        self._engine = engine
        self._settings = settings
        self.usage = UsageBook()
        self.slot = 0
        self._remote: dict[str, RemoteImage] = {}  # full reference -> its manifest
        self._layer_bytes: dict[str, int] = {}  # diff id -> compressed bytes
        self._plan = planner_of(settings.download_planner, settings.exact_time_limit_s)
        self.budget_bytes = int(settings.image_disk_budget_mb * MIB / settings.layer_expansion)

    async def _manifest(self, image: ImageRef) -> RemoteImage:
        known = self._remote.get(image.full)
        if known is not None and image.digest is not None:
            return known
        timeout = self._settings.engine_timeout_s
        remote = await asyncio.wait_for(
            asyncio.to_thread(
                fetch_remote_image, image.registry, image.repository, image.reference, timeout
            ),
            timeout * 3,
        )
        self._remote[image.full] = remote
        for layer in remote.layers:
            self._layer_bytes[layer.diff_id] = layer.size
        return remote

    async def _learn_sizes(self, local: Sequence[LocalImage]) -> None:
        """Compressed sizes of cached layers not seen in a manifest yet (an
        image pulled before this deployer started): from its manifest."""
        for image in local:
            if all(layer in self._layer_bytes for layer in image.diff_ids):
                continue
            try:
                ref = parse_image(image.references[0], self._settings.registry)
                await self._manifest(ref)
            except (Refused, ManifestUnknown, RegistryUnreachable, TimeoutError) as error:
                log.warning("cached image without sizes", extra={"error": str(error)})

    async def _cached(self) -> tuple[list[LocalImage], list[CachedImage], dict[str, str]]:
        local = await self._engine.registry_images(self._settings.registry)
        await self._learn_sizes(local)
        cached = [CachedImage(image.id, image.diff_ids) for image in local]
        names = {image.id: image.references[0] for image in local}
        return local, cached, names

    async def _evict(
        self,
        local: Sequence[LocalImage],
        names: Mapping[str, str],
        keep: frozenset[str],
        bytes_to_free: int,
        why: EvictionCause,
        evicted: list[EvictedImage],
    ) -> None:
        cached = [CachedImage(image.id, image.diff_ids) for image in local]
        by_id = {image.id: image for image in local}
        policy = EvictionPolicy(self._settings.eviction_policy)
        victims = choose_evictions(
            cached, self._layer_bytes, self.usage, names, keep, policy, bytes_to_free
        )
        freed = 0
        for victim in victims:
            if freed >= bytes_to_free:
                break
            refusal = await self._engine.remove_image(by_id[victim.key])
            if refusal is not None:  # a container uses it after all: never forced
                log.warning("image not evicted", extra={"image": victim.key, "error": refusal})
                continue
            freed += victim.freed_bytes
            self.usage.forget(names[victim.key])
            evicted.append(
                EvictedImage(image=names[victim.key], freed_bytes=victim.freed_bytes, why=why)
            )

    async def plan(self, waiting: Sequence[SlotRequest], wanted: set[str]) -> SlotDecision:
        """One slot. `wanted`: full references of the images some analytic
        still wants (running, starting, downloading, stopped, or waiting)."""
        settings = self._settings
        decision = SlotDecision()
        evicted: list[EvictedImage] = []
        local, cached, names = await self._cached()
        cache_before = held_bytes(cached, self._layer_bytes)

        def wanted_images(images: Sequence[LocalImage]) -> frozenset[str]:
            return frozenset(image.id for image in images if wanted.intersection(image.references))

        def wanted_layers(images: Sequence[LocalImage]) -> frozenset[str]:
            keys = wanted_images(images)
            return frozenset(layer for i in images if i.id in keys for layer in i.diff_ids)

        to_free = threshold_bytes(
            cache_before,
            self.budget_bytes,
            settings.eviction_start_fraction,
            settings.eviction_target_fraction,
        )
        if to_free:
            await self._evict(local, names, wanted_images(local), to_free, "threshold", evicted)
            local, cached, names = await self._cached()

        manifests: dict[str, RemoteImage] = {}
        plannable: list[SlotRequest] = []
        for request in waiting:
            try:
                manifests[request.image.full] = await self._manifest(request.image)
            except ManifestUnknown as error:
                decision.failed[request.analytic] = f"bad reference: {error}"
                continue
            except (RegistryUnreachable, TimeoutError):
                decision.unplanned.append(request.analytic)  # the workers retry it
                continue
            whole = sum(layer.size for layer in manifests[request.image.full].layers)
            if whole > self.budget_bytes:
                decision.failed[request.analytic] = (
                    f"refused: image disk budget: the image needs {_mib(whole)} compressed"
                    f" (x{settings.layer_expansion} on disk), the budget is"
                    f" {settings.image_disk_budget_mb:g} MiB"
                )
                continue
            plannable.append(request)

        keep = wanted_layers(local)
        catalog = LayerCatalog(
            layer_bytes=dict(self._layer_bytes),
            image_layers={
                full: tuple(layer.diff_id for layer in remote.layers)
                for full, remote in manifests.items()
            },
        )
        used_by_wanted = catalog.bytes_of(keep & self._layer_bytes.keys())
        if settings.downlink_kbps is None:
            capacity = max(0, self.budget_bytes - used_by_wanted)
        else:
            capacity = slot_capacity_bytes(
                self.budget_bytes, used_by_wanted, settings.downlink_kbps, settings.download_slot_s
            )
        problem = DownloadProblem(
            catalog,
            tuple(PendingRequest(r.image.full, r.saving_kbps) for r in plannable),
            keep,
            capacity,
        )
        plan = (
            await asyncio.to_thread(self._plan, problem)
            if plannable
            else DownloadPlan(settings.download_planner, (), (), 0, 0.0, "optimal", 0.0)
        )
        chosen_images = set(plan.images)
        for request in plannable:
            if request.image.full in chosen_images:
                decision.chosen.append(request.analytic)
            else:
                new = catalog.bytes_of(
                    set(catalog.image_layers[request.image.full]) - keep - set(plan.layers)
                )
                decision.deferred[request.analytic] = (
                    f"slot {self.slot}: not chosen by {settings.download_planner}"
                    f" ({_mib(new)} to fetch; {_mib(capacity - plan.new_bytes)} of"
                    f" {_mib(capacity)} left in the slot)"
                )

        # Room for the chosen pulls: unwanted images whose space they need go,
        # first those sharing no layer with the pulls (theirs need no download).
        planned = set(plan.layers)
        sharing = frozenset(i.id for i in local if planned.intersection(i.diff_ids))
        for keep_images in (wanted_images(local) | sharing, wanted_images(local)):
            on_disk = {layer for image in local for layer in image.diff_ids}
            arriving = catalog.bytes_of(planned - on_disk)
            over = held_bytes(cached, self._layer_bytes) + arriving - self.budget_bytes
            if over <= 0:
                break
            await self._evict(local, names, keep_images, over, "room", evicted)
            local, cached, names = await self._cached()
        now = time.time()
        for image in chosen_images:
            self.usage.pulled(image, now)

        decision.report = self._report(
            plan,
            capacity,
            (cache_before, held_bytes(cached, self._layer_bytes)),
            decision,
            evicted,
            sorted(names.values()),
        )
        self.slot += 1
        return decision

    def _report(
        self,
        plan: DownloadPlan,
        capacity: int,
        cache: tuple[int, int],
        decision: SlotDecision,
        evicted: list[EvictedImage],
        cached: list[str],
    ) -> DownloadSlot:
        sizes = [len(decision.chosen), len(decision.deferred), len(plan.images)]
        sizes += [len(evicted), len(cached)]
        unlisted = sum(max(0, size - MAX_SLOT_ENTRIES) for size in sizes)
        return DownloadSlot(
            source=DEPLOYER,
            slot=self.slot,
            planner=self._settings.download_planner,
            solve_ms=plan.solve_seconds * 1000,
            budget_bytes=self.budget_bytes,
            capacity_bytes=capacity,
            cache_bytes_before=cache[0],
            cache_bytes_after=cache[1],
            planned_bytes=plan.new_bytes,
            saved_kbps=plan.saved_kbps,
            chosen=decision.chosen[:MAX_SLOT_ENTRIES],
            deferred=sorted(decision.deferred)[:MAX_SLOT_ENTRIES],
            images=list(plan.images)[:MAX_SLOT_ENTRIES],
            evicted=evicted[:MAX_SLOT_ENTRIES],
            cached=cached[:MAX_SLOT_ENTRIES],
            unlisted=unlisted,
        )
