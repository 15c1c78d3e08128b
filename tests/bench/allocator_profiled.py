"""A sensitivity check of the allocator benchmark on edgegw's own level tables.

The benchmark's goals are judged on its synthetic workload (allocator_bench).
This runs the same Poisson arrivals and budget sweep on the levels the stages
really publish: camera-capture's and object-detector's from the video
profile (a camera brings both analytics), audio-classifier's and gas-replay's
from theirs, each device's costs scaled by a log-normal factor (scenes,
sensors and topics differ) and a weight from 1 to 5.

What it shows: these tables are coarse and their cheapest levels are not
cheap (a camera at 2 fps costs ~160 kbit/s), so many low budgets are below
what the cheapest levels need. There every solver answers the same (every
analytic at its cheapest level, flagged infeasible), which pulls the pooled
low-budget ratios towards 1. Reported next to the synthetic results, never
instead of them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from services.audio_classifier.levels import load_profile as load_audio_profile
from services.audio_classifier.levels import mic_levels
from services.bandwidth_allocator.levels import Analytic
from services.gas_replay.levels import load_profile as load_gas_profile
from services.gas_replay.levels import sensor_levels
from services.media.video_profile import load_video_profile
from tests.bench.allocator_bench import (
    APPROXIMATIONS,
    BUDGETS_KBPS,
    Arrival,
    low_budget_ratios,
    poisson_workload,
    utility_vs_budget,
)

ROOT = "edgegw/gw-0001"
# (device, share of arrivals): what a site adds over time.
DEVICES = (("camera", 0.3), ("microphone", 0.3), ("gas", 0.4))
COST_SPREAD = 0.4  # sigma of the log-normal cost factor per device


def product_tables() -> dict[str, list[tuple[float, float]]]:
    video = load_video_profile()
    return {
        "camera": [(row.cost_kbps, row.utility) for row in video.camera],
        "detector": [(row.cost_kbps, row.utility) for row in video.detector],
        "audio": [
            (level.cost_kbps, level.utility)
            for level in mic_levels(load_audio_profile(), ROOT, "mic")
        ],
        "gas": [
            (level.cost_kbps, level.utility)
            for level in sensor_levels(load_gas_profile(), ROOT, "sensor", "co")
        ],
    }


def arrivals_from(tables: dict[str, list[tuple[float, float]]]) -> Arrival:
    kinds = {"camera": ("camera", "detector"), "microphone": ("audio",), "gas": ("gas",)}

    def arrive(rng: np.random.Generator, name: str) -> list[Analytic]:
        device = DEVICES[rng.choice(len(DEVICES), p=[share for _, share in DEVICES])][0]
        scale = float(np.exp(rng.normal(0.0, COST_SPREAD)))
        return [
            Analytic.of(
                f"{kind}.{name}",
                int(rng.integers(1, 6)),
                [(round(cost * scale, 4), utility) for cost, utility in tables[kind]],
            )
            for kind in kinds[device]
        ]

    return arrive


def profiled_sensitivity(seed: int, snapshots: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    workload = poisson_workload(rng, 0.2, 100.0, snapshots, arrive=arrivals_from(product_tables()))
    sweep = utility_vs_budget(workload)
    low = [BUDGETS_KBPS.index(budget) for budget in sweep["low_budgets_kbps"]]
    cheapest = [math.fsum(min(c for c, _ in a.levels) for a in active) for active in workload]
    below = sum(BUDGETS_KBPS[i] < need for i in low for need in cheapest)
    pairs = max(1, len(low) * len(workload))
    together, each = low_budget_ratios(sweep)
    return {
        "tables": "video_levels.json (camera, detector), audio_levels.json, gas_levels.json",
        "mean_analytics": round(sweep["mean_analytics"], 1),
        "mean_demand_kbps": sweep["mean_demand_kbps"],
        "low_budgets_kbps": sweep["low_budgets_kbps"],
        "low_budget_share_below_cheapest_levels": round(below / pairs, 3),
        "low_budget_ratio": together,
        "low_budget_ratio_by_budget": each,
        "worst_budget_gap_to_dp": {name: max(sweep["gap_to_dp"][name]) for name in APPROXIMATIONS},
    }
