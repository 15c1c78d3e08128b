"""The Docker Engine, as the deployer uses it: every SDK call runs in a
worker thread under a timeout (the SDK blocks; its own socket timeout bounds
a call the thread cannot be cancelled out of)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions

from services.deployer.admission import LABEL_ANALYTIC, LABEL_GATEWAY, LABEL_MANAGED, MANAGER

log = logging.getLogger(__name__)
T = TypeVar("T")

# A pull error that is the reference's fault, not the link's: not retried.
PERMANENT_PULL_ERRORS = (
    "manifest unknown",
    "not found",
    "does not exist",
    "invalid reference",
    "name unknown",
    "unauthorized",
)


class EngineError(Exception):
    """The engine refused a call, or did not answer in time."""


class PullFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True)
class ContainerView:
    id: str
    analytic: str
    status: str  # created, running, restarting, exited, dead, paused, removing
    labels: dict[str, str]


@dataclass(frozen=True)
class ContainerDetail:
    id: str
    status: str
    exit_code: int
    oom_killed: bool
    restart_count: int
    started_at: str


@dataclass(frozen=True)
class LocalImage:
    """An image on disk that came from the gateway's registry."""

    id: str
    references: tuple[str, ...]  # its tags there (its digests when it has no tag)
    diff_ids: tuple[str, ...]  # its layers, base first


@dataclass(frozen=True)
class RunSpec:
    """Everything a container is created with (see `stage.run_spec`)."""

    name: str
    image: str
    labels: dict[str, str]
    environment: dict[str, str]
    nano_cpus: int
    memory_bytes: int
    pids: int
    user: str
    network: str
    restart: dict[str, Any]
    command: list[str] | None = None  # None: the image's own


class Engine:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = url
        self.timeout_s = timeout_s
        self._client: Any = None
        self._diff_ids: dict[str, tuple[str, ...]] = {}  # image id -> layers (immutable)

    async def _call(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout_s or self.timeout_s)
        except TimeoutError as error:
            raise EngineError(f"{getattr(fn, '__name__', fn)}: no answer in time") from error
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            raise EngineError(str(error)) from error

    async def connect(self) -> None:
        def make() -> Any:
            return docker.DockerClient(
                base_url=self._url, version="auto", timeout=max(1, int(self.timeout_s))
            )

        self._client = await self._call(make)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- network ---------------------------------------------------------------

    async def ensure_network(self, name: str) -> str:
        """The analytics' network (internal: no route out; no traffic between
        containers): created if missing. Returns its gateway address, where a
        broker on this host listens for them."""

        def ensure() -> str:
            try:
                network = self._client.networks.get(name)
            except docker.errors.NotFound:
                network = self._client.networks.create(
                    name,
                    driver="bridge",
                    internal=True,
                    options={"com.docker.network.bridge.enable_icc": "false"},
                    labels={LABEL_MANAGED: MANAGER},
                )
                network.reload()
            configs = network.attrs.get("IPAM", {}).get("Config") or [{}]
            return str(configs[0].get("Gateway", ""))

        return await self._call(ensure)

    # -- images ----------------------------------------------------------------

    async def image_digests(self, reference: str) -> list[str] | None:
        """RepoDigests of a local image, or None when it is not on disk."""

        def get() -> list[str] | None:
            try:
                image = self._client.images.get(reference)
            except docker.errors.ImageNotFound:
                return None
            return list(image.attrs.get("RepoDigests") or [])

        return await self._call(get)

    async def local_diff_ids(self) -> set[str]:
        """Every layer (diff id) of every image on disk."""

        def collect() -> set[str]:
            found: set[str] = set()
            for summary in self._client.api.images(all=False):
                image_id = summary["Id"]
                if image_id not in self._diff_ids:
                    with contextlib.suppress(docker.errors.NotFound):
                        attrs = self._client.api.inspect_image(image_id)
                        self._diff_ids[image_id] = tuple(attrs["RootFS"].get("Layers") or [])
                found.update(self._diff_ids.get(image_id, ()))
            return found

        return await self._call(collect)

    async def registry_images(self, registry: str) -> list[LocalImage]:
        """Images on disk tagged (or, untagged, pinned) from `registry`, by id."""
        prefix = f"{registry}/"

        def collect() -> list[LocalImage]:
            found: list[LocalImage] = []
            for summary in self._client.api.images(all=False):
                tags = [t for t in summary.get("RepoTags") or [] if t.startswith(prefix)]
                digests = [d for d in summary.get("RepoDigests") or [] if d.startswith(prefix)]
                if not tags and not digests:
                    continue
                image_id = str(summary["Id"])
                if image_id not in self._diff_ids:
                    with contextlib.suppress(docker.errors.NotFound):
                        attrs = self._client.api.inspect_image(image_id)
                        self._diff_ids[image_id] = tuple(attrs["RootFS"].get("Layers") or [])
                references = tuple(sorted(tags)) if tags else tuple(sorted(digests))
                found.append(LocalImage(image_id, references, self._diff_ids.get(image_id, ())))
            return sorted(found, key=lambda image: image.references)

        return await self._call(collect)

    async def remove_image(self, image: LocalImage) -> str | None:
        """`docker image rm` of every reference of `image`, never forced: None
        when it is gone, else why not (a container still uses it)."""

        def remove() -> str | None:
            for reference in image.references:
                try:
                    self._client.api.remove_image(reference, force=False, noprune=False)
                except docker.errors.ImageNotFound:
                    continue
                except docker.errors.APIError as error:
                    if error.status_code == 409:
                        return str(error.explanation or error)
                    raise
            return None

        return await self._call(remove)

    async def layers_bytes(self) -> int:
        """What the engine's image layers take on disk (shared ones once)."""
        return int((await self._call(self._client.api.df))["LayersSize"])

    async def pull(
        self, name: str, reference: str, on_progress: Callable[[int], None], timeout_s: float
    ) -> None:
        """Pull `name` at `reference` (tag or digest); `on_progress(bytes_done)`
        is called on the event loop as layers download."""
        loop = asyncio.get_running_loop()
        tag = reference if not reference.startswith("sha256:") else None
        repository = name if tag else f"{name}@{reference}"

        def run() -> None:
            done: dict[str, int] = {}
            totals: dict[str, int] = {}
            for line in self._client.api.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in line:
                    message = str(line.get("error"))
                    permanent = any(word in message.lower() for word in PERMANENT_PULL_ERRORS)
                    raise PullFailed(message, permanent=permanent)
                layer = line.get("id", "")
                detail = line.get("progressDetail") or {}
                status = line.get("status", "")
                if status == "Downloading" and detail.get("total"):
                    done[layer] = int(detail.get("current", 0))
                    totals[layer] = int(detail["total"])
                elif status in ("Download complete", "Pull complete") and layer in totals:
                    done[layer] = totals[layer]
                else:
                    continue
                loop.call_soon_threadsafe(on_progress, sum(done.values()))

        try:
            await self._call(run, timeout_s=timeout_s)
        except EngineError as error:
            cause = error.__cause__
            if isinstance(cause, docker.errors.APIError):
                text = str(cause.explanation or cause)
                permanent = cause.status_code in (400, 404) or any(
                    word in text.lower() for word in PERMANENT_PULL_ERRORS
                )
                # "connection refused" from the registry comes back as a 404
                # or 500 with the dial error: the link's fault, retried.
                if "connection refused" in text or "dial tcp" in text or "timeout" in text:
                    permanent = False
                raise PullFailed(text, permanent=permanent) from error
            raise PullFailed(str(error), permanent=False) from error

    # -- containers ------------------------------------------------------------

    async def run_container(self, spec: RunSpec) -> tuple[str, bool]:
        """Create and start the container; (id, created). A container of that
        name already there is the same analytic: it is started if it is not
        running, never created twice."""

        def run() -> tuple[str, bool]:
            try:
                container = self._client.containers.create(
                    spec.image,
                    command=spec.command,
                    name=spec.name,
                    labels=spec.labels,
                    environment=spec.environment,
                    nano_cpus=spec.nano_cpus,
                    mem_limit=spec.memory_bytes,
                    memswap_limit=spec.memory_bytes,  # no swap beyond the limit
                    pids_limit=spec.pids,
                    user=spec.user,
                    read_only=True,
                    tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"},
                    cap_drop=["ALL"],
                    security_opt=["no-new-privileges"],
                    privileged=False,
                    network=spec.network,
                    restart_policy=spec.restart,
                    log_config={"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}},
                    detach=True,
                )
                created = True
            except docker.errors.APIError as error:
                if error.status_code != 409:
                    raise
                container = self._client.containers.get(spec.name)
                created = False
            if container.status != "running":
                container.start()
            return str(container.id), created

        return await self._call(run)

    async def managed(self, gateway_id: str) -> list[ContainerView]:
        def listed() -> list[ContainerView]:
            found = self._client.api.containers(
                all=True,
                filters={"label": [f"{LABEL_MANAGED}={MANAGER}", f"{LABEL_GATEWAY}={gateway_id}"]},
            )
            return [
                ContainerView(
                    id=str(item["Id"]),
                    analytic=str((item.get("Labels") or {}).get(LABEL_ANALYTIC, "")),
                    status=str(item.get("State", "")),
                    labels=dict(item.get("Labels") or {}),
                )
                for item in found
            ]

        return await self._call(listed)

    async def detail(self, container_id: str) -> ContainerDetail | None:
        def inspect() -> ContainerDetail | None:
            try:
                attrs = self._client.api.inspect_container(container_id)
            except docker.errors.NotFound:
                return None
            state = attrs.get("State", {})
            return ContainerDetail(
                id=container_id,
                status=str(state.get("Status", "")),
                exit_code=int(state.get("ExitCode", 0)),
                oom_killed=bool(state.get("OOMKilled", False)),
                restart_count=int(attrs.get("RestartCount", 0)),
                started_at=str(state.get("StartedAt", "")),
            )

        return await self._call(inspect)

    async def inspect(self, container_id: str) -> dict[str, Any]:
        return dict(await self._call(self._client.api.inspect_container, container_id))

    async def log_tail(self, container_id: str, lines: int) -> list[str]:
        def tail() -> list[str]:
            raw = self._client.api.logs(container_id, stdout=True, stderr=True, tail=lines)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            return [line[:500] for line in text.splitlines()][-lines:]

        try:
            return await self._call(tail)
        except EngineError as error:
            return [f"(logs unavailable: {error})"]

    async def stop(self, container_id: str, grace_s: int) -> None:
        def stop() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self._client.api.stop(container_id, timeout=grace_s)

        await self._call(stop, timeout_s=self.timeout_s + grace_s)

    async def start(self, container_id: str) -> None:
        await self._call(self._client.api.start, container_id)

    async def remove(self, container_id: str, grace_s: int) -> None:
        def remove() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self._client.api.stop(container_id, timeout=grace_s)
            with contextlib.suppress(docker.errors.NotFound):
                self._client.api.remove_container(container_id, force=True)

        await self._call(remove, timeout_s=self.timeout_s + grace_s)
