"""The air-gapped build (tools/offline_bundle.py, compose/install.sh): the
bundle `make offline-bundle` gathers (cached, so only a first run downloads)
builds the gateway's three images with the network cut, and they run.

The cut is checked, not assumed: a RUN step in the bundle server's network
namespace has no route, resolves no name and connects to no package registry,
yet reaches the bundle; and an image built there without the bundle fails.
The images are built with --no-cache, so no layer from a connected build
stands in for one from the bundle, under tags of their own (removed after)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tools import offline_bundle

TAG = "offline-test"
# Where a package registry is, by name and by address (pypi.org's Fastly
# front, deb.debian.org's): a route out would reach at least the addresses.
OUTSIDE = ("deb.debian.org/80", "pypi.org/443", "151.101.0.223/443", "151.101.2.132/80")
# One module of each extra the stage image installs (cv2: video, docker: deploy, ...).
STAGE_IMPORTS = (
    "cv2",
    "ai_edge_litert",
    "onnxruntime",
    "scipy",
    "influxdb_client",
    "docker",
    "prometheus_client",
    "starlette",
    "uvicorn",
    "PIL",
)
PROBE = """ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN { echo "routes=$(tail -n +2 /proc/net/route | wc -l)"; \\
      for target in %s; do \\
        if timeout 10 bash -c "exec 3<>/dev/tcp/$target" 2>/dev/null; \\
        then echo "$target=open"; else echo "$target=closed"; fi; \\
      done; } >/probe.txt
"""


def _run(image: str, *command: str, entrypoint: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", entrypoint, image, *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _probe(bundle: offline_bundle.Bundle, server: str, scratch: Path) -> dict[str, str]:
    targets = [f"127.0.0.1/{offline_bundle.BUNDLE_PORT}", *OUTSIDE]
    (scratch / "Dockerfile").write_text(PROBE % " ".join(targets))
    image = f"edgegw-offline-probe:{TAG}"
    offline_bundle.build_cut(
        scratch, "Dockerfile", image, server, {"BASE_IMAGE": bundle.base_image}, no_cache=True
    )
    try:
        said = _run(image, "/probe.txt", entrypoint="cat")
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)
    assert said.returncode == 0, said.stderr
    return dict(line.split("=", 1) for line in said.stdout.split())


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_the_images_build_from_the_bundle_with_the_network_cut(tmp_path: Path) -> None:
    timings: dict[str, Any] = {}
    started = time.monotonic()
    bundle = offline_bundle.gather()
    timings["bundle_s"] = round(time.monotonic() - started, 1)
    assert bundle.manifest["debs"] > 0
    assert bundle.manifest["wheels"] > 0
    assert "mosquitto-clients" in bundle.manifest["apt"]["compose/broker.Dockerfile"]
    built = [f"{name}:{TAG}" for name in offline_bundle.DOCKERFILES]
    try:
        with offline_bundle.serving(bundle) as server:
            (tmp_path / "probe").mkdir()
            probe = _probe(bundle, server, tmp_path / "probe")
            assert probe == {
                "routes": "0",
                f"127.0.0.1/{offline_bundle.BUNDLE_PORT}": "open",
                **dict.fromkeys(OUTSIDE, "closed"),
            }
            # Without BUNDLE_URL an image installs from the network as ever,
            # and under the cut that fails: nothing comes from outside.
            bare = tmp_path / "bare"
            (bare / "compose").mkdir(parents=True)
            for name in ("compose/broker.Dockerfile", "compose/install.sh"):
                (bare / name).write_bytes((offline_bundle.REPO / name).read_bytes())
            with pytest.raises(RuntimeError, match="returned a non-zero code"):
                offline_bundle.build_cut(
                    bare,
                    "compose/broker.Dockerfile",
                    f"edgegw-offline-bare:{TAG}",
                    server,
                    {"BASE_IMAGE": bundle.base_image},
                    no_cache=True,
                )
        started = time.monotonic()
        timings["built_s"] = offline_bundle.build_images(bundle, TAG, no_cache=True)
        timings["build_s"] = round(time.monotonic() - started, 1)

        stage, broker, tsdb = built
        help_text = _run(stage, "--help", entrypoint="edgegw")
        assert help_text.returncode == 0, help_text.stderr
        assert "run" in help_text.stdout
        heavy = _run(stage, "-c", f"import {', '.join(STAGE_IMPORTS)}", entrypoint="python")
        assert heavy.returncode == 0, heavy.stderr
        mosquitto = _run(broker, "-h", entrypoint="mosquitto")
        assert "mosquitto version 2" in mosquitto.stdout + mosquitto.stderr
        client = _run(broker, "--help", entrypoint="mosquitto_sub")
        assert "mosquitto_sub is a simple mqtt client" in client.stdout + client.stderr
        victoria = _run(tsdb, "-help", entrypoint="/usr/bin/victoria-metrics")
        assert "victoria-metrics is a time series database" in victoria.stdout + victoria.stderr
    finally:
        subprocess.run(
            ["docker", "rmi", "-f", *built, f"edgegw-offline-bare:{TAG}"],
            capture_output=True,
            check=False,
        )
    print(f"offline build: {timings}")
