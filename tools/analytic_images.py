"""Build the example analytics images and push them to a local registry
(`make images`; the deployer tests and bench build them once per session).

They share layers in known ways, as real analytics do (base -> runtime ->
model -> analytic code), but stay a few MB so pulls are quick:

    analytic-base:1   FROM scratch: a static busybox, a non-root user
    analytic-mqtt:1   + mosquitto_pub and the libraries it links (the runtime)
    analytic-model:1  + a 256 KiB "model" blob
    hello:1, hello:2  + a script publishing on its declared output topic
                        (the two differ only in that top layer)
    crash:1           + a script that logs and exits 3
    hog:1             + a script that eats memory until the kernel kills it
    solo:1            its own base layer: shares nothing with the others

and, with --stage, the project's own stage image (compose/stage.Dockerfile,
built from this tree) as `edgegw-analytics/stage:1`: an existing analytic
(a camera and its detector, the audio classifier) deployed by a request
whose `stage` names it.

    python -m tools.analytic_images --registry 127.0.0.1:5000 [--stage]

prints, per image, its reference in the registry and its layers (digest and
compressed size) as the registry's manifest gives them.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

PREFIX = "edgegw-analytics"  # the repository namespace in the registry
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
REPO = Path(__file__).resolve().parents[1]
STAGE_REPOSITORY = f"{PREFIX}/stage"
# What compose/stage.Dockerfile copies; `.cache` may be a symlink (a work
# tree sharing its assets), so the context is made here, links followed.
STAGE_CONTEXT = (
    "compose/stage.Dockerfile",
    "compose/install.sh",
    "compose/build-ca",
    "pyproject.toml",
    "README.md",
    "schemas",
    "services",
    "broker",
    ".cache/models",
    ".cache/media",
)
HOST_CAS = Path("/usr/local/share/ca-certificates")
MODEL_BYTES = 256 * 1024
NOBODY = "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"

PUBLISHER = r"""#!/bin/sh
# An example analytic: publishes a small JSON result on its declared output
# topic every PERIOD_S seconds with its own broker identity.
n=0
echo "analytic $EDGEGW_ANALYTIC version $VERSION publishing on $EDGEGW_TOPIC_ANALYTIC_OUTPUT"
while true; do
  n=$((n + 1))
  mosquitto_pub -h "$EDGEGW_MQTT_HOST" -p "$EDGEGW_MQTT_PORT" -V mqttv5 \
    -u "$EDGEGW_MQTT_USERNAME" -P "$EDGEGW_MQTT_PASSWORD" -i "$EDGEGW_MQTT_CLIENT_ID" \
    -q 1 -t "$EDGEGW_TOPIC_ANALYTIC_OUTPUT" \
    -m "{\"analytic\":\"$EDGEGW_ANALYTIC\",\"version\":$VERSION,\"n\":$n}" \
    || echo "publish $n failed"
  sleep "${PERIOD_S:-0.5}"
done
"""
CRASHER = """#!/bin/sh
echo "loading model"
echo "model checksum mismatch"
echo "giving up" >&2
exit 3
"""
HOG = """#!/bin/sh
echo "allocating"
x=$(head -c 400000000 /dev/zero | tr '\\000' a)
echo "allocated ${#x} bytes"
"""


@dataclass(frozen=True)
class ExampleImage:
    name: str  # repository under PREFIX, tag "1" unless given
    tag: str
    dockerfile: str
    files: dict[str, str | bytes]
    prefix: str = PREFIX
    push: bool = True  # False: a local parent only, never pushed

    @property
    def repository(self) -> str:
        return f"{self.prefix}/{self.name}"

    @property
    def local(self) -> str:
        return f"{self.repository}:{self.tag}"


def _code_image(name: str, tag: str, script: str, version: int) -> ExampleImage:
    dockerfile = (
        f"FROM {PREFIX}/analytic-model:1\n"
        f"ENV VERSION={version}\n"
        "COPY run.sh /opt/analytic/run.sh\n"
        "USER 65534:65534\n"
        'CMD ["/bin/sh", "/opt/analytic/run.sh"]\n'
    )
    return ExampleImage(name, tag, dockerfile, {"run.sh": f"# v{version}\n{script}"})


def _model_blob() -> bytes:
    return random.Random(4).randbytes(MODEL_BYTES)  # incompressible, same every build


def _mqtt_runtime() -> dict[str, str | bytes]:
    """mosquitto_pub and every library it links, at the same paths."""
    binary = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True, timeout=30)
    files: dict[str, str | bytes] = {"rootfs/usr/bin/mosquitto_pub": Path(binary).read_bytes()}
    for line in ldd.stdout.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 3 else parts[0]
        if not path.startswith("/"):
            continue
        data = Path(path).resolve().read_bytes()
        files[f"rootfs/lib/x86_64-linux-gnu/{Path(path).name}"] = data
        if path.startswith("/lib64/"):
            files[f"rootfs{path}"] = data
    return files


def _static_busybox() -> bytes:
    path = shutil.which("busybox") or "/bin/busybox"
    ldd = subprocess.run(["ldd", path], capture_output=True, text=True, check=False, timeout=30)
    if "not a dynamic executable" not in ldd.stdout + ldd.stderr:
        raise RuntimeError(f"{path} is not static: install Debian's busybox-static")
    return Path(path).read_bytes()


def example_images() -> list[ExampleImage]:
    busybox = _static_busybox()
    base = ExampleImage(
        "analytic-base",
        "1",
        "FROM scratch\n"
        "COPY rootfs/ /\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "USER 65534:65534\n",
        {
            "rootfs/bin/busybox": busybox,
            "rootfs/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" + NOBODY,
            "rootfs/etc/group": "root:x:0:\nnogroup:x:65534:\n",
        },
    )
    mqtt = ExampleImage(
        "analytic-mqtt", "1", f"FROM {base.local}\nCOPY rootfs/ /\n", _mqtt_runtime()
    )
    model = ExampleImage(
        "analytic-model",
        "1",
        f"FROM {mqtt.local}\nCOPY model.bin /opt/model/model.bin\n",
        {"model.bin": _model_blob()},
    )
    solo_files: dict[str, str | bytes] = {
        "rootfs/bin/busybox": busybox,
        "rootfs/etc/passwd": NOBODY,
        "rootfs/etc/solo": "an analytic that shares no layer\n",
        "run.sh": "#!/bin/sh\necho solo up\nwhile true; do sleep 1; done\n",
    }
    solo = ExampleImage(
        "solo",
        "1",
        "FROM scratch\nCOPY rootfs/ /\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "COPY run.sh /opt/analytic/run.sh\nUSER 65534:65534\n"
        'CMD ["/bin/sh", "/opt/analytic/run.sh"]\n',
        solo_files,
    )
    return [
        base,
        mqtt,
        model,
        _code_image("hello", "1", PUBLISHER, 1),
        _code_image("hello", "2", PUBLISHER, 2),
        _code_image("crash", "1", CRASHER, 1),
        _code_image("hog", "1", HOG, 1),
        solo,
    ]


def manifest(registry: str, repository: str, reference: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{reference}",
        headers={"Accept": MANIFEST_V2},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        found: dict[str, Any] = json.loads(reply.read())
        found["digest"] = reply.headers.get("Docker-Content-Digest", "")
        return found


def build_and_push(
    registry: str, client: Any | None = None, images: list[ExampleImage] | None = None
) -> dict[str, dict[str, Any]]:
    """Build every example image (or `images`, parents first), push it to
    `registry`; returns, per pushed image, its registry reference, manifest
    digest and layers (digest, size)."""
    client = client or docker.from_env(version="auto", timeout=300)
    pushed: dict[str, dict[str, Any]] = {}
    for image in example_images() if images is None else images:
        with tempfile.TemporaryDirectory(prefix="edgegw-image-") as context:
            root = Path(context)
            for relative, content in image.files.items():
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, str):
                    target.write_text(content)
                else:
                    target.write_bytes(content)
                target.chmod(0o755)
            (root / "Dockerfile").write_text(image.dockerfile)
            built, _ = client.images.build(path=context, tag=image.local, rm=True, forcerm=True)
        if not image.push:
            continue
        remote = f"{registry}/{image.repository}"
        built.tag(remote, image.tag)
        for line in client.api.push(remote, image.tag, stream=True, decode=True):
            if "error" in line:
                raise RuntimeError(f"push {remote}:{image.tag}: {line['error']}")
        # The registry's name was only needed to push: untag it, so the engine
        # holds the image once under its own name (a deploy pulls it back).
        client.images.remove(f"{remote}:{image.tag}", noprune=True)
        found = manifest(registry, image.repository, image.tag)
        pushed[image.local] = {
            "reference": f"{remote}:{image.tag}",
            "digest": found["digest"],
            "layers": [
                {"digest": layer["digest"], "size": layer["size"]} for layer in found["layers"]
            ],
        }
    return pushed


def _stage_context(repo: Path) -> io.BytesIO:
    buffer = io.BytesIO()

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if "__pycache__" in info.name or info.name.endswith(".pyc") else info

    with tarfile.open(fileobj=buffer, mode="w", dereference=True) as tar:
        for relative in STAGE_CONTEXT:
            tar.add(repo / relative, arcname=relative, filter=keep)
        # The host's own CAs (a TLS-intercepting proxy's), as tools/compose.sh
        # copies them: pip inside the build reaches PyPI as the host does.
        for ca in sorted(HOST_CAS.glob("*.crt")):
            tar.add(ca, arcname=f"compose/build-ca/{ca.name}")
    buffer.seek(0)
    return buffer


def base_image() -> str:
    """The bookworm base the project's images build on (tools/docker_engine.sh
    pulls it, or makes it from the Debian archive, and names it last)."""
    done = subprocess.run(
        ["bash", str(REPO / "tools/docker_engine.sh")],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return done.stdout.strip().splitlines()[-1]


def build_and_push_stage(
    registry: str, client: Any | None = None, repo: Path = REPO, tag: str = "1"
) -> str:
    """Build compose/stage.Dockerfile from `repo`, push it to `registry`;
    returns its reference there. A first build installs every wheel: minutes."""
    client = client or docker.from_env(version="auto", timeout=1800)
    local = f"{STAGE_REPOSITORY}:{tag}"
    client.images.build(
        fileobj=_stage_context(repo),
        custom_context=True,
        dockerfile="compose/stage.Dockerfile",
        buildargs={"BASE_IMAGE": base_image()},
        tag=local,
        rm=True,
        forcerm=True,
        timeout=1800,
    )
    remote = f"{registry}/{STAGE_REPOSITORY}"
    client.images.get(local).tag(remote, tag)
    for line in client.api.push(remote, tag, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"push {remote}:{tag}: {line['error']}")
    return f"{remote}:{tag}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.analytic_images")
    parser.add_argument("--registry", default="127.0.0.1:5000")
    parser.add_argument("--stage", action="store_true", help="also the project's stage image")
    args = parser.parse_args(argv)
    pushed: dict[str, Any] = dict(build_and_push(args.registry))
    if args.stage:
        pushed[f"{STAGE_REPOSITORY}:1"] = {"reference": build_and_push_stage(args.registry)}
    print(json.dumps(pushed, indent=2))


if __name__ == "__main__":
    main()
