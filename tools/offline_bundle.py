"""The air-gapped build: gather every .deb and wheel the gateway's images
install on a connected machine, then build the images from them alone.

    python -m tools.offline_bundle gather            # `make offline-bundle`
    python -m tools.offline_bundle build [--tag T]   # `make images OFFLINE=1`

`gather` runs in a container of the images' base image, so what it resolves
is what the image builds resolve: `apt-get install --download-only` of each
Dockerfile's `edgegw-install apt` list (the dependency closure over that base),
indexed as a flat apt repository (apt-ftparchive), and `pip wheel` of the
stage's extras, pip and the build backend with the base's Python 3.11, every
sdist built into a wheel. The base image itself is saved beside them. The
bundle is cached under var/offline-bundle-cache/<key>, the key a hash of what
decides its content (pyproject.toml, the Dockerfiles, compose/install.sh, the
base image's id): a second run reuses it. manifest.json, written last, lists
every file with its size and sha256.

`build` serves the bundle from a busybox httpd in a container with
`--network none` and builds each image with `docker build --network
container:<it>`: every RUN step shares that namespace, reaches the bundle on
127.0.0.1 and nothing else (there is no route out), and compose/install.sh
installs with BUNDLE_URL set (apt from the bundle's repository only, pip
--no-index).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import swarm

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "var" / "offline-bundle-cache"
DOCKERFILES = swarm.IMAGES  # image name -> Dockerfile, the gateway's three images
KEY_INPUTS = ("pyproject.toml", "compose/install.sh", *DOCKERFILES.values())
BUNDLE_PORT = 8080  # inside the server's own network namespace: never collides
BUSYBOX = Path("/usr/bin/busybox")  # Debian's busybox-static, as the analytics images use
GATHER_TIMEOUT_S = 3600
BUILD_TIMEOUT_S = 3600
_APT = re.compile(r"edgegw-install apt ([^\\&\n]+)")
_PIP_EXTRAS = re.compile(r"edgegw-install pip [^\n]*'\.\[([a-z0-9_,-]+)\]'")


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict[str, Any]

    @property
    def base_image(self) -> str:
        return str(self.manifest["base_image"])


def apt_packages(repo: Path = REPO) -> dict[str, list[str]]:
    """Per Dockerfile, the packages its `edgegw-install apt` steps name."""
    found: dict[str, list[str]] = {}
    for dockerfile in DOCKERFILES.values():
        text = (repo / dockerfile).read_text()
        found[dockerfile] = [p for line in _APT.findall(text) for p in line.split()]
    return found


def stage_extras(repo: Path = REPO) -> list[str]:
    text = (repo / DOCKERFILES["edgegw-stage"]).read_text()
    return sorted({e for group in _PIP_EXTRAS.findall(text) for e in group.split(",")})


def docker(*args: str, timeout_s: float = 600.0) -> str:
    """Runs `docker args`; a failure says what the command printed last (a
    build's failing step is on stdout)."""
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=timeout_s
    )
    if done.returncode != 0:
        said = (done.stdout[-3000:] + "\n" + done.stderr[-2000:]).strip()
        raise RuntimeError(f"docker {' '.join(args[:3])} ...: exit {done.returncode}\n{said}")
    return done.stdout


def image_id(image: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", image).strip()


def bundle_key(base_id: str, repo: Path = REPO) -> str:
    digest = hashlib.sha256(base_id.encode())
    for name in KEY_INPUTS:
        digest.update(name.encode() + b"\0" + (repo / name).read_bytes())
    return digest.hexdigest()[:16]


def _gather_script(sets: dict[str, list[str]], extras: list[str]) -> str:
    downloads = "\n".join(
        "apt-get install -y -q --download-only --no-install-recommends "
        f"-o Dir::Cache::archives=/out/debs {' '.join(packages)}"
        for packages in sets.values()
        if packages
    )
    # The build backend pip needs for `pip install .` (build isolation) and the
    # pip the image upgrades to come from the bundle too.
    build_requires = " ".join(f"'{r}'" for r in _build_requires())
    return f"""set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
mkdir -p /out/debs/partial /out/wheels
{downloads}
rm -rf /out/debs/partial /out/debs/lock
# The gatherer's own tools (apt-ftparchive, a Python 3.11 pip), not bundled;
# what the bundle already holds is installed from it.
cp /out/debs/*.deb /var/cache/apt/archives/
apt-get install -y -q --no-install-recommends apt-utils python3 python3-venv ca-certificates
cd /out/debs
apt-ftparchive packages . >Packages
gzip -9nk Packages
apt-ftparchive release . >Release
cp /ca/*.crt /usr/local/share/ca-certificates/ 2>/dev/null || true
update-ca-certificates >/dev/null
export PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m venv /venv
/venv/bin/pip install -q --upgrade pip
cd /src
/venv/bin/pip wheel -q -w /out/wheels pip {build_requires} '.[{",".join(extras)}]'
rm -f /out/wheels/edgegw-*
chown -R {_owner()} /out
"""


def _build_requires() -> list[str]:
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [str(r) for r in data["build-system"]["requires"]]


def _owner() -> str:
    stat = REPO.stat()
    return f"{stat.st_uid}:{stat.st_gid}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_wheel_index(wheels: Path) -> None:
    """busybox httpd lists no directories: pip's --find-links reads this page."""
    links = "\n".join(f'<a href="{w.name}">{w.name}</a><br>' for w in sorted(wheels.glob("*.whl")))
    (wheels / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}\n</body></html>\n")


def gather(cache: Path = CACHE, base: str | None = None, repo: Path = REPO) -> Bundle:
    """The bundle for this tree, from the cache or gathered now (needs the network)."""
    base = base or swarm.base_image()
    key = bundle_key(image_id(base), repo)
    target = cache / key
    if (target / "manifest.json").exists():
        return Bundle(target, json.loads((target / "manifest.json").read_text()))
    started = time.monotonic()
    partial = cache / f"{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "debs").mkdir(parents=True)
    (partial / "wheels").mkdir()
    sets = apt_packages(repo)
    extras = stage_extras(repo)
    with tempfile.TemporaryDirectory(prefix="edgegw-offline-src-") as scratch:
        src = Path(scratch) / "src"
        (src / "ca").mkdir(parents=True)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(repo / name, src / name)
        for package in ("schemas", "services", "broker"):  # as the Dockerfile's stub
            (src / package).mkdir()
            (src / package / "__init__.py").touch()
        for ca in sorted(swarm.HOST_CAS.glob("*.crt")):
            shutil.copy(ca, src / "ca" / ca.name)
        (src / "gather.sh").write_text(_gather_script(sets, extras))
        name = f"edgegw-offline-gather-{uuid.uuid4().hex[:8]}"
        try:
            docker(
                "run",
                "--name",
                name,
                "-v",
                f"{partial}:/out",
                "-v",
                f"{src}:/src",
                "-v",
                f"{src / 'ca'}:/ca:ro",
                base,
                "sh",
                "/src/gather.sh",
                timeout_s=GATHER_TIMEOUT_S,
            )
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    _write_wheel_index(partial / "wheels")
    docker("save", "-o", str(partial / "base-image.tar"), base, timeout_s=600)
    files = sorted(p for p in partial.rglob("*") if p.is_file())
    manifest = {
        "key": key,
        "base_image": base,
        "base_image_id": image_id(base),
        "apt": sets,
        "extras": extras,
        "gathered_s": round(time.monotonic() - started, 1),
        "files": {
            str(p.relative_to(partial)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in files
        },
        "debs": len(list((partial / "debs").glob("*.deb"))),
        "wheels": len(list((partial / "wheels").glob("*.whl"))),
        "bytes": sum(p.stat().st_size for p in files),
    }
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return Bundle(target, manifest)


def find_bundle(path: Path | None = None, cache: Path = CACHE, repo: Path = REPO) -> Bundle:
    """The bundle at `path`, else the one cached for this tree: its key
    matches when the base image is here; the newest otherwise (the site has
    not loaded the base image yet)."""
    if path is None:
        found = sorted(cache.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise SystemExit(f"no offline bundle in {cache}: run `make offline-bundle`")
        path = found[-1].parent
        for manifest_file in found:
            manifest = json.loads(manifest_file.read_text())
            probe = subprocess.run(
                ["docker", "image", "inspect", "--format", "{{.Id}}", manifest["base_image"]],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0 and bundle_key(probe.stdout.strip(), repo) == manifest["key"]:
                path = manifest_file.parent
    return Bundle(path, json.loads((path / "manifest.json").read_text()))


def ensure_base(bundle: Bundle) -> None:
    """The base image from the bundle when the engine does not have it."""
    probe = subprocess.run(
        ["docker", "image", "inspect", bundle.base_image], capture_output=True, check=False
    )
    if probe.returncode != 0:
        docker("load", "-i", str(bundle.path / "base-image.tar"), timeout_s=600)


@contextmanager
def serving(bundle: Bundle) -> Iterator[str]:
    """A busybox httpd on the bundle in a container with no network; yields
    the container's name, the network builds join with `--network container:`."""
    name = f"edgegw-offline-bundle-{uuid.uuid4().hex[:8]}"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "-v",
        f"{bundle.path}:/srv:ro",
        "-v",
        f"{BUSYBOX}:/busybox:ro",
        bundle.base_image,
        "/busybox",
        "httpd",
        "-f",
        "-p",
        f"127.0.0.1:{BUNDLE_PORT}",
        "-h",
        "/srv",
    )
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def bundle_url() -> str:
    return f"http://127.0.0.1:{BUNDLE_PORT}"


def build_cut(
    context: Path,
    dockerfile: str,
    tag: str,
    server: str,
    build_args: dict[str, str],
    *,
    no_cache: bool = False,
) -> str:
    """`docker build` whose RUN steps share the server's network namespace."""
    command = ["build", "--network", f"container:{server}", "-f", str(context / dockerfile)]
    for key, value in build_args.items():
        command += ["--build-arg", f"{key}={value}"]
    if no_cache:
        command.append("--no-cache")
    docker(*command, "-t", tag, str(context), timeout_s=BUILD_TIMEOUT_S)
    return tag


def build_images(
    bundle: Bundle, tag: str, *, no_cache: bool = False, prefix: str = ""
) -> dict[str, float]:
    """Every image of the gateway built from `bundle` with the network cut;
    seconds per image."""
    ensure_base(bundle)
    timings: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="edgegw-offline-build-") as scratch,
        serving(bundle) as server,
    ):
        context = swarm.build_context(Path(scratch))
        args = {"BASE_IMAGE": bundle.base_image, "BUNDLE_URL": bundle_url()}
        for name, dockerfile in DOCKERFILES.items():
            started = time.monotonic()
            build_cut(context, dockerfile, f"{prefix}{name}:{tag}", server, args, no_cache=no_cache)
            timings[name] = round(time.monotonic() - started, 1)
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.offline_bundle")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("gather", help="download the bundle (connected machine)")
    build = commands.add_parser("build", help="build the images from the bundle, network cut")
    build.add_argument("--bundle", type=Path, help="a bundle directory (default: the cached one)")
    build.add_argument("--tag", default="latest")
    build.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "gather":
        bundle = gather()
        summary = {k: bundle.manifest[k] for k in ("key", "base_image", "debs", "wheels", "bytes")}
        print(json.dumps({"path": str(bundle.path), **summary}, indent=2))
        return
    bundle = find_bundle(args.bundle)
    timings = build_images(bundle, args.tag, no_cache=args.no_cache)
    print(json.dumps({"bundle": str(bundle.path), "built_s": timings}, indent=2))


if __name__ == "__main__":
    main()
