"""Seed 004 live (tools/seed004_live.py): the deployer's download slots on a
real engine, a registry and a broker of the run's own (images `live-seed/*`,
never another test's). The planner's choices become real pulls, an eviction
a real `docker image rm`, and the same requests give the same decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tools import seed004_data
from tools.seed004_live import LiveOptions, live_type, run_live

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(600)]

# In the seed's format (type, arrival minute, lifetime). Two images per kind:
# audio1 -> audio0, audio2 -> audio1, yolo1 -> yolo0. Slot 1 (minute 5)
# pulls audio0 and audio1 (2.2 MB); A leaves at minute 6, C comes at 7;
# slot 2 (minute 10) plans yolo0 (1.23 MB new) into a 3.3 MB budget: the
# room comes from audio0 (no analytic wants it), never from audio1 (B runs).
REQUESTS = "type,arrival_minute,lifetime_minutes\naudio1,0,6\naudio2,0,20\nyolo1,7,20\n"


def _options(tmp_path: Path) -> LiveOptions:
    path = tmp_path / "requests_5_1_10_25_1.csv"  # the seed's name: rate 5, 1-10 min
    path.write_text(REQUESTS)
    return LiveOptions(path, seconds_per_minute=2.5, minutes=12, types_per_kind=2, budget_mib=3.15)


def test_planned_pulls_and_a_real_eviction_live_with_the_same_decisions_twice(
    tmp_path: Path,
) -> None:
    client = docker.from_env(version="auto", timeout=60)
    observed: list[dict[str, Any]] = []

    def check(row: dict[str, Any], registry: str) -> None:
        images = {a: f"live-seed/{live_type(a.split('-')[0], 2)}:1" for a in row["running"]}
        for evicted in row["evicted"]:
            assert evicted["image"] not in images.values(), (evicted, row["running"])
            with pytest.raises(docker.errors.ImageNotFound):
                client.api.inspect_image(f"{registry}/{evicted['image']}")
        for cached in row["cached"]:
            client.api.inspect_image(f"{registry}/{cached}")  # there, as reported
        observed.append(row)

    folder = seed004_data.data_dir()
    try:
        first = run_live(_options(tmp_path), tmp_path / "first", folder, check)
        second = run_live(_options(tmp_path), tmp_path / "second", folder)
    finally:
        client.close()

    assert first["late_events"] == 0 and second["late_events"] == 0, (first, second)
    slots = first["slots"]
    assert [s["images"] for s in slots[:3]] == [
        [],
        ["live-seed/audio0:1", "live-seed/audio1:1"],
        ["live-seed/yolo0:1"],
    ]
    assert sorted(slots[1]["chosen"]) == ["audio1-0-0", "audio2-0-1"]
    # Real pulls: what the engine downloaded is what the planner counted.
    assert slots[1]["pulled_bytes"] == slots[1]["planned_bytes"] > 2_000_000
    assert slots[2]["pulled_bytes"] == slots[2]["planned_bytes"] > 1_000_000
    assert [e["image"] for e in slots[2]["evicted"]] == ["live-seed/audio0:1"]
    assert slots[2]["evicted"][0]["why"] == "room"
    assert "live-seed/audio1:1" in slots[2]["cached"]
    assert "live-seed/audio0:1" not in slots[2]["cached"]
    assert slots[2]["cache_bytes_after"] + slots[2]["planned_bytes"] <= slots[2]["budget_bytes"]
    assert sorted(slots[-1]["running"]) == ["audio2-0-1", "yolo1-7-2"]
    assert len(observed) == len(slots)
    assert first["decisions"] == second["decisions"]
