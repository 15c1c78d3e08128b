"""The container images and compose/docker-compose.yml on a real Docker engine:
`make compose-check` (tools/compose_check.py) run as a test. It needs the
engine `make test` sets up (tools/docker_engine.sh: Debian's docker.io,
dockerd, a bookworm base image)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tools.compose_check import expected_services  # noqa: E402


# A first build installs every wheel into the image: minutes, not the
# suite's 120 s default.
@pytest.mark.slow
@pytest.mark.timeout(1300)
def test_the_compose_stack_comes_up_and_turns_video_and_sound_into_alerts() -> None:
    done = subprocess.run(
        [sys.executable, "tools/compose_check.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,  # a first build downloads every wheel into the image
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    report = orjson.loads(done.stdout.strip().splitlines()[-1])["compose_check"]
    print(report)
    assert report["missing"] == []
    seen = report["first_seen_s"]
    assert {"alert:object", "alert:sound", "gas_average", "tsdb_points"} <= seen.keys()
    # Every container's healthcheck passed, limits and log rotation applied.
    services = expected_services()
    assert {"broker", "tsdb", "object-detector", "cloud-bridge"} <= set(services)
    assert sorted(report["healthy_s"]) == services
    assert sorted(report["containers"]) == services
    for service, applied in report["containers"].items():
        assert applied["cpus"] > 0 and applied["memory_mb"] > 0, service
        assert applied["log_driver"] == "json-file", service
        assert applied["log_options"] == {"max-size": "10m", "max-file": "3"}, service
    assert report["containers"]["object-detector"]["memory_mb"] == 512
    # A stopped stage fails its probe; the same probe passed while it ran.
    probe = report["stopped_stage_probe"]
    assert (probe["running_exit"], probe["stopped_exit"]) == (0, 1)
