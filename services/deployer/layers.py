"""What a pull will download: the image's layers as the registry's manifest
gives them (digest, compressed size, and the uncompressed diff id from the
image config), against the layers already on disk; and whether that fits
the image-disk budget. The registry is read with plain HTTP GETs (API v2)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
LIST_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024


class ManifestUnknown(LookupError):
    """The registry has no such repository or tag/digest: a bad reference."""


class RegistryUnreachable(OSError):
    """The registry did not answer, or answered with a server error."""


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    diff_id: str


@dataclass(frozen=True)
class RemoteImage:
    digest: str  # the manifest's digest: what `repo@digest` pins
    layers: tuple[Layer, ...]


@dataclass(frozen=True)
class DownloadPlan:
    bytes_total: int
    layers_total: int
    layers_cached: int


def _get(url: str, accept: tuple[str, ...], timeout_s: float) -> tuple[dict[str, Any], str, str]:
    request = urllib.request.Request(url, headers={"Accept": ", ".join(accept)})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            body = reply.read(MAX_DOCUMENT_BYTES + 1)
            if len(body) > MAX_DOCUMENT_BYTES:
                raise RegistryUnreachable(f"{url}: document over {MAX_DOCUMENT_BYTES} bytes")
            kind = reply.headers.get("Content-Type", "")
            return json.loads(body), kind, reply.headers.get("Docker-Content-Digest", "")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise ManifestUnknown(f"{url}: not in the registry") from None
        if error.code >= 500:
            raise RegistryUnreachable(f"{url}: HTTP {error.code}") from None
        raise ManifestUnknown(f"{url}: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise RegistryUnreachable(f"{url}: {error}") from None
    except ValueError as error:
        raise RegistryUnreachable(f"{url}: not JSON ({error})") from None


def fetch_remote_image(
    registry: str, repository: str, reference: str, timeout_s: float, arch: str = "amd64"
) -> RemoteImage:
    """The layers of `repository:reference` in `registry` (blocking)."""
    base = f"http://{registry}/v2/{repository}"
    document, kind, digest = _get(
        f"{base}/manifests/{reference}", (*MANIFEST_TYPES, *LIST_TYPES), timeout_s
    )
    if kind in LIST_TYPES or "manifests" in document:
        chosen = [
            entry
            for entry in document.get("manifests", [])
            if entry.get("platform", {}).get("architecture") == arch
        ]
        if not chosen:
            raise ManifestUnknown(f"{repository}:{reference}: no {arch} image in the list")
        document, kind, _ = _get(
            f"{base}/manifests/{chosen[0]['digest']}", MANIFEST_TYPES, timeout_s
        )
    config_digest = document["config"]["digest"]
    config, _, _ = _get(f"{base}/blobs/{config_digest}", ("*/*",), timeout_s)
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    blobs = document.get("layers", [])
    if len(diff_ids) != len(blobs):
        raise ManifestUnknown(f"{repository}:{reference}: manifest and config disagree")
    layers = tuple(
        Layer(str(blob["digest"]), int(blob["size"]), str(diff_id))
        for blob, diff_id in zip(blobs, diff_ids, strict=True)
    )
    return RemoteImage(digest or config_digest, layers)


def plan_download(image: RemoteImage, local_diff_ids: set[str]) -> DownloadPlan:
    """Layers already on disk are not downloaded again; the rest count once."""
    missing = {layer.diff_id: layer.size for layer in image.layers}
    cached = {diff_id for diff_id in missing if diff_id in local_diff_ids}
    return DownloadPlan(
        bytes_total=sum(size for diff_id, size in missing.items() if diff_id not in cached),
        layers_total=len(image.layers),
        layers_cached=sum(1 for layer in image.layers if layer.diff_id in cached),
    )


def disk_refusal(
    plan: DownloadPlan, used_bytes: int, budget_bytes: int, expansion: float
) -> str | None:
    """Why the pull would exceed the image-disk budget, or None."""
    needed = int(plan.bytes_total * expansion)
    if used_bytes + needed <= budget_bytes:
        return None
    mib = 1024 * 1024
    return (
        f"image disk budget: the pull needs ~{needed / mib:.1f} MiB "
        f"({plan.bytes_total / mib:.1f} MiB compressed, x{expansion}), "
        f"{used_bytes / mib:.1f} of {budget_bytes / mib:.1f} MiB in use"
    )
