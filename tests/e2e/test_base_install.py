"""A gateway that runs only light stages installs edgegw without extras: the
command starts, the light stages import, and `edgegw run gas-average` comes
online against a real broker and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.broker import MosquittoBroker, running_broker
from tests.harness.probe import Probe

REPO = Path(__file__).resolve().parents[2]
# What `pip install .` builds from; copied so the build leaves nothing in the repo.
SOURCES = ("pyproject.toml", "README.md", "schemas", "services", "profiling", "broker")
LIGHT_STAGES = (
    "gas_replay",
    "gas_average",
    "alert_forwarder",
    "cloud_bridge",
    "bandwidth_allocator",
)
EXTRAS_ONLY = ("scipy", "cv2", "onnxruntime", "ai_edge_litert", "influxdb_client", "docker")
INSTALL_TIMEOUT_S = 600

pytestmark = [pytest.mark.integration, pytest.mark.timeout(INSTALL_TIMEOUT_S + 120)]


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH: the venv must run the copy pip installed, not a source tree."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("base-install")
    source = work / "edgegw"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    target = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, timeout=120)
    installed = subprocess.run(
        [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
        cwd=work,
        env=_clean_env(),
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return target


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    with running_broker(tmp_path_factory.mktemp("broker")) as server:
        yield server


def _in_venv(venv: Path, program: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`program` of the venv's bin/ with `args`, in the venv, with a clean environment."""
    return subprocess.run(
        [str(venv / "bin" / program), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=venv,
        env=_clean_env(),
    )


def _python(venv: Path, code: str) -> subprocess.CompletedProcess[str]:
    return _in_venv(venv, "python", "-c", code)


def test_the_base_install_has_no_extra_and_runs_the_installed_copy(venv: Path) -> None:
    found = _python(
        venv,
        "import importlib.util as u, services; "
        f"print([m for m in {EXTRAS_ONLY!r} if u.find_spec(m)]); print(services.__file__)",
    )
    assert found.returncode == 0, found.stderr
    extras, location = found.stdout.splitlines()
    assert extras == "[]"
    assert location.startswith(str(venv)), location


def test_edgegw_help_starts_on_the_base_install(venv: Path) -> None:
    done = _in_venv(venv, "edgegw", "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run" in done.stdout and "profile" in done.stdout


@pytest.mark.parametrize("stage", LIGHT_STAGES)
def test_a_light_stage_imports_on_the_base_install(venv: Path, stage: str) -> None:
    done = _python(venv, f"import services.{stage}.__main__")
    assert done.returncode == 0, done.stderr[-3000:]


def test_edgegw_run_gas_average_comes_online_and_stops_on_sigterm(
    venv: Path, broker: MosquittoBroker
) -> None:
    gateway = "tbaseinstall"
    root = f"edgegw/{gateway}"
    observer = Probe(broker, "operator")
    log = venv / "gas-average.log"
    try:
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(venv / "bin" / "edgegw"), "run", "gas-average"],
                cwd=venv,
                env=_clean_env(**broker.env_for("gas-average", gateway)),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            observer.subscribe(f"{root}/status/gas-average")
            observer.wait_for(lambda m: m.payload == b"online", timeout_s=30)
            # A subscriber that comes later is told by the retained status.
            late = Probe(broker, "operator")
            try:
                late.subscribe(f"{root}/status/gas-average")
                late.wait_for(lambda m: m.retained and m.payload == b"online")
            finally:
                late.close()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        assert code == 0, log.read_text(errors="replace")[-3000:]
        observer.wait_for(lambda m: m.payload == b"offline")
    finally:
        observer.close()
