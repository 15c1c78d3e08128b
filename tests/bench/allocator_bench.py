"""Bandwidth allocator benchmark: `python -m tests.bench.allocator_bench` prints
one JSON object (key `allocator`) and saves a PNG of utility vs budget.

Workload (after the seed paper's experiments): analytics arrive as a Poisson
process and leave after exponential lifetimes; each has 10 levels on a
concave-ish utility curve (a camera, a microphone or a gas sensor, costs
spread geometrically up to its full rate) and a weight from 1 to 5. At every
arrival or departure the allocator re-solves, with every solver, at every
budget of a fixed uplink sweep. All ratios compare solvers of the same run.
The LP relaxation's bound is reported beside them (`lp_bound_vs_*`): the
ratio no allocator can exceed on the same workload and budgets.
"""

from __future__ import annotations

import argparse
import heapq
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from services.bandwidth_allocator.levels import Analytic
from services.bandwidth_allocator.solvers import (
    FPTAS_DEFAULT_EPS,
    SOLVERS,
    Allocation,
    Solver,
    lp_upper_bound,
    solve_dp,
    solve_fptas,
)

# (kind, lowest and highest full-rate cost in kbit/s, share of arrivals)
KINDS = (("camera", 800.0, 4000.0, 0.3), ("audio", 64.0, 256.0, 0.3), ("gas", 2.0, 8.0, 0.4))
LEVELS = 10
BUDGETS_KBPS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
# "Low budget": the uplink pays for at most this share of what the analytics could use.
LOW_BUDGET_SHARE = 0.1
SIZES = (10, 100, 1000)
REFERENCE = "dp"
# At its default eps the FPTAS returns the greedy whenever the LP bound
# certifies it (every case of this workload); a tight eps makes it build its
# table, so the sweep also measures that path.
TIGHT_FPTAS = "fptas_eps_0.005"
SWEEP_SOLVERS: dict[str, Solver] = {
    **SOLVERS,
    TIGHT_FPTAS: lambda analytics, budget: solve_fptas(analytics, budget, 0.005),
}
APPROXIMATIONS = ("fptas", TIGHT_FPTAS, "greedy_hull")
# The LP relaxation's value: no allocator, exact or not, scores more. Its ratio
# to a baseline is the ceiling of every solver's ratio on the same workload.
LP_BOUND = "lp_bound"
BASELINES = ("weighted_split", "equal_split")
# vs_weighted / vs_equal: seed 004's result (Y.-J. Wang's NTHU thesis on rate
# allocation of IoT analytics at gateways: +18 % and +37 % over two baselines
# at low upload bandwidth, on its own testbed). Only its abstract is reachable
# here, so its workload is not reproduced; LP_BOUND shows what this one allows.
GOALS = {"gap_to_dp": 0.01, "solve_ms_1000x10": 50.0, "vs_weighted": 1.18, "vs_equal": 1.37}


@dataclass(frozen=True)
class Shape:
    """How steep the utility curves are and how far apart the weights."""

    name: str
    steepness: tuple[float, float]  # 1 - exp(-s x cost share): high s saturates early
    log_weights: bool  # False: integers 1..5; True: log-uniform over [1, 10]


# The benchmark's workload. Its goals are judged on it; it is not tuned to them.
DEFAULT_SHAPE = Shape("default", (2.0, 10.0), log_weights=False)
# Sensitivity check, asked for in review: seed 004's experiments are said to
# use steeper concave utilities and more unequal weights, which should favour
# the knapsack over the splits. Reported next to the default, never instead
# of it. (Measured here with seed 6: it does NOT raise the low-budget ratios;
# saturating curves let even a small equal share reach most of the utility.)
STEEP_UNEQUAL_SHAPE = Shape("steep_unequal_weights", (5.0, 20.0), log_weights=True)


def make_analytic(rng: np.random.Generator, name: str, shape: Shape = DEFAULT_SHAPE) -> Analytic:
    kinds = [kind for kind, *_ in KINDS]
    kind = rng.choice(len(KINDS), p=[share for *_, share in KINDS])
    _, lowest, highest, _ = KINDS[kind]
    top = rng.uniform(lowest, highest)
    costs = np.sort(top * np.geomspace(1 / 500, 1, LEVELS) * rng.uniform(0.8, 1.2, LEVELS))
    steepness = rng.uniform(*shape.steepness)  # how early the curve saturates
    fraction = costs / costs[-1]
    utility = (1 - np.exp(-steepness * fraction)) / (1 - np.exp(-steepness))
    utility = np.clip(utility + rng.normal(0, 0.02, LEVELS), 0, 1)  # measured, so noisy
    levels = [(round(float(c), 3), float(u)) for c, u in zip(costs, utility, strict=True)]
    weight = float(np.exp(rng.uniform(0, np.log(10)))) if shape.log_weights else None
    if weight is None:
        weight = int(rng.integers(1, 6))
    return Analytic.of(f"{kinds[kind]}-{name}", weight, levels)


# One arrival: the analytics a new device brings (a camera brings two).
Arrival = Callable[[np.random.Generator, str], list[Analytic]]


def poisson_workload(
    rng: np.random.Generator,
    arrival_per_s: float,
    mean_life_s: float,
    snapshots: int,
    shape: Shape = DEFAULT_SHAPE,
    arrive: Arrival | None = None,
) -> list[list[Analytic]]:
    """The active analytics after each arrival or departure, from steady state."""
    if arrive is None:
        arrive = lambda rng, name: [make_analytic(rng, name, shape)]  # noqa: E731
    active: dict[int, list[Analytic]] = {}
    departures: list[tuple[float, int]] = []
    clock, serial = 0.0, 0
    for _ in range(rng.poisson(arrival_per_s * mean_life_s)):
        active[serial] = arrive(rng, str(serial))
        heapq.heappush(departures, (rng.exponential(mean_life_s), serial))
        serial += 1
    next_arrival = rng.exponential(1 / arrival_per_s)
    result: list[list[Analytic]] = []
    while len(result) < snapshots:
        if departures and departures[0][0] < next_arrival:
            clock, leaving = heapq.heappop(departures)
            del active[leaving]
        else:
            clock = next_arrival
            active[serial] = arrive(rng, str(serial))
            heapq.heappush(departures, (clock + rng.exponential(mean_life_s), serial))
            serial += 1
            next_arrival = clock + rng.exponential(1 / arrival_per_s)
        if active:
            result.append([analytic for device in active.values() for analytic in device])
    return result


def utility_vs_budget(workload: Sequence[list[Analytic]]) -> dict[str, Any]:
    totals = {name: np.zeros(len(BUDGETS_KBPS)) for name in SWEEP_SOLVERS}
    spent = {name: np.zeros(len(BUDGETS_KBPS)) for name in SWEEP_SOLVERS}
    usable = np.zeros(len(BUDGETS_KBPS))  # the budget, or all the analytics could use
    worst_gap = dict.fromkeys(SWEEP_SOLVERS, -math.inf)
    lp_total = np.zeros(len(BUDGETS_KBPS))
    weight_total = sum(sum(a.weight for a in active) for active in workload)
    for active in workload:
        demand = math.fsum(max(c for c, _ in a.levels) for a in active)
        for column, budget in enumerate(BUDGETS_KBPS):
            answers: dict[str, Allocation] = {
                name: solve(active, budget) for name, solve in SWEEP_SOLVERS.items()
            }
            usable[column] += min(budget, demand)
            reference = answers[REFERENCE].total_utility
            bound = lp_upper_bound(active, budget)
            lp_total[column] += bound if bound is not None else reference
            for name, answer in answers.items():
                totals[name][column] += answer.total_utility
                spent[name][column] += answer.cost_kbps
                if reference > 0:
                    gap = (reference - answer.total_utility) / reference
                    worst_gap[name] = max(worst_gap[name], gap)
    mean_demand = statistics.fmean(sum(max(c for c, _ in a.levels) for a in s) for s in workload)
    low = [i for i, budget in enumerate(BUDGETS_KBPS) if budget <= LOW_BUDGET_SHARE * mean_demand]
    reference_total = totals[REFERENCE]

    def ratio(solver: str, baseline: str) -> list[float]:
        return [
            round(float(a / b), 4) for a, b in zip(totals[solver], totals[baseline], strict=True)
        ]

    return {
        "budgets_kbps": list(BUDGETS_KBPS),
        "mean_analytics": statistics.fmean(len(s) for s in workload),
        "mean_demand_kbps": round(mean_demand, 1),
        "low_budgets_kbps": [BUDGETS_KBPS[i] for i in low],
        # sum(weight x utility) / sum(weight): 1 means every analytic at full rate
        "mean_utility": {
            name: [round(float(v / weight_total), 4) for v in total]
            for name, total in totals.items()
        },
        "lp_bound_mean_utility": [round(float(v / weight_total), 4) for v in lp_total],
        # Seed 004's other measure: the share of the usable budget (the budget,
        # or all the analytics' top levels if less) a solver actually spends.
        "budget_use": {
            name: [round(float(v / u), 4) for v, u in zip(total, usable, strict=True)]
            for name, total in spent.items()
        },
        "gap_to_dp": {  # (DP - solver) / DP over the whole run, per budget; < 0: better than DP
            name: [
                round(float((r - v) / r), 6) for r, v in zip(reference_total, total, strict=True)
            ]
            for name, total in totals.items()
        },
        "worst_gap_to_dp_any_snapshot": {name: round(gap, 6) for name, gap in worst_gap.items()},
        "gap_to_lp_bound": {  # certified: no solver can beat the LP bound
            name: [round(float((b - v) / b), 6) for b, v in zip(lp_total, total, strict=True)]
            for name, total in totals.items()
        },
        "ratio": {
            f"{solver}_vs_{baseline}": ratio(solver, baseline)
            for solver in ("dp", "fptas", "greedy_hull")
            for baseline in BASELINES
        },
        "_totals": {**totals, LP_BOUND: lp_total},
        "_low": low,
    }


def solve_times(rng: np.random.Generator) -> dict[str, Any]:
    """Median solve time at 20 % of the upgrade span, for 10, 100 and 1000 analytics."""
    result: dict[str, Any] = {}
    for size in SIZES:
        analytics = [make_analytic(rng, str(i)) for i in range(size)]
        floor = sum(min(c for c, _ in a.levels) for a in analytics)
        ceiling = sum(max(c for c, _ in a.levels) for a in analytics)
        budget = floor + 0.2 * (ceiling - floor)
        # The DP's budget cell (None: its bound reduction settled every analytic).
        cell = solve_dp(analytics, budget).resolution_kbps
        row: dict[str, Any] = {"budget_kbps": round(budget, 1), "dp_cell_kbps": cell}
        for name, solve in SOLVERS.items():
            repeats = 3 if size >= 1000 and name in ("dp", "fptas") else 7
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                solve(analytics, budget)
                times.append(time.perf_counter() - started)
            row[f"{name}_ms"] = round(statistics.median(times) * 1000, 2)
        row["greedy_hull_vs_weighted_split_time"] = round(
            row["greedy_hull_ms"] / row["weighted_split_ms"], 2
        )
        result[f"{size}x{LEVELS}"] = row
    return result


def save_plot(sweep: dict[str, Any], times: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {
        "dp": "-o",
        "fptas": "--s",
        TIGHT_FPTAS: "--d",
        "greedy_hull": ":^",
        "weighted_split": "-x",
        "equal_split": "-+",
    }
    for name, values in sweep["mean_utility"].items():
        left.plot(sweep["budgets_kbps"], values, styles.get(name, "-"), label=name)
    left.plot(
        sweep["budgets_kbps"],
        sweep["lp_bound_mean_utility"],
        color="grey",
        linestyle=":",
        linewidth=1,
        label="LP bound (no solver above)",
    )
    left.set_xscale("log", base=2)
    left.set_xticks(sweep["budgets_kbps"], [str(b) for b in sweep["budgets_kbps"]], rotation=45)
    left.set_xlabel("uplink budget (kbit/s)")
    left.set_ylabel("mean weighted utility (1 = all at full rate)")
    left.set_title(
        f"utility vs budget, Poisson workload (~{sweep['mean_analytics']:.0f} analytics)"
    )
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    sizes = [int(key.split("x")[0]) for key in times]
    for name in SOLVERS:
        right.plot(
            sizes, [times[key][f"{name}_ms"] for key in times], styles.get(name, "-"), label=name
        )
    right.axhline(GOALS["solve_ms_1000x10"], color="grey", linestyle="--", linewidth=1)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel(f"analytics ({LEVELS} levels each)")
    right.set_ylabel("solve time (ms, median)")
    right.set_title("solve time (dashed: 50 ms goal)")
    right.grid(True, which="both", alpha=0.3)
    right.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def low_budget_ratios(sweep: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """Solver / baseline over the low budgets together (sum of utilities, so
    the largest low budget weighs most), and at each low budget alone.
    `lp_bound_vs_*` is the ceiling: what no solver can beat on this workload."""
    totals, low = sweep.pop("_totals"), sweep.pop("_low")
    solvers = ("dp", "greedy_hull", LP_BOUND)
    pairs = [(solver, baseline) for solver in solvers for baseline in BASELINES]
    together = {
        f"{solver}_vs_{baseline}": round(
            float(sum(totals[solver][i] for i in low) / sum(totals[baseline][i] for i in low)), 4
        )
        for solver, baseline in pairs
        if low
    }
    each = {
        str(BUDGETS_KBPS[i]): {
            f"{solver}_vs_{baseline}": round(float(totals[solver][i] / totals[baseline][i]), 4)
            for solver in ("dp", LP_BOUND)
            for baseline in BASELINES
        }
        for i in low
    }
    return together, each


def sensitivity(seed: int, snapshots: int, shape: Shape) -> dict[str, Any]:
    """The utility sweep on another workload shape (same seed and arrivals)."""
    rng = np.random.default_rng(seed)
    workload = poisson_workload(rng, 0.2, 100.0, snapshots, shape)
    sweep = utility_vs_budget(workload)
    together, each = low_budget_ratios(sweep)
    return {
        "shape": {
            "steepness": list(shape.steepness),
            "weights": "log-uniform 1..10" if shape.log_weights else "integers 1..5",
        },
        "low_budgets_kbps": sweep["low_budgets_kbps"],
        "low_budget_ratio": together,
        "low_budget_ratio_by_budget": each,
        "worst_budget_gap_to_dp": {name: max(sweep["gap_to_dp"][name]) for name in APPROXIMATIONS},
    }


def run(seed: int, snapshots: int, plot: Path) -> dict[str, Any]:
    from tests.bench.allocator_profiled import profiled_sensitivity  # it imports this module

    rng = np.random.default_rng(seed)
    workload = poisson_workload(rng, arrival_per_s=0.2, mean_life_s=100.0, snapshots=snapshots)
    sweep = utility_vs_budget(workload)
    times = solve_times(rng)
    low_ratio, low_by_budget = low_budget_ratios(sweep)
    worst_gap = {name: max(sweep["gap_to_dp"][name]) for name in APPROXIMATIONS}
    biggest = times[f"{SIZES[-1]}x{LEVELS}"]
    save_plot(sweep, times, plot)
    goals = {
        "greedy_within_1pct_of_dp": worst_gap["greedy_hull"] <= GOALS["gap_to_dp"],
        "fptas_within_1pct_of_dp": worst_gap["fptas"] <= GOALS["gap_to_dp"],
        "tight_fptas_within_1pct_of_dp": worst_gap[TIGHT_FPTAS] <= GOALS["gap_to_dp"],
        "greedy_1000x10_within_50ms": biggest["greedy_hull_ms"] <= GOALS["solve_ms_1000x10"],
        # Informational: the exact solvers at 1000 x 10 (the stage's default is dp).
        "dp_1000x10_within_50ms": biggest["dp_ms"] <= GOALS["solve_ms_1000x10"],
        "fptas_1000x10_within_50ms": biggest["fptas_ms"] <= GOALS["solve_ms_1000x10"],
        "low_budget_dp_vs_weighted_ge_1.18": low_ratio.get("dp_vs_weighted_split", 0)
        >= GOALS["vs_weighted"],
        "low_budget_dp_vs_equal_ge_1.37": low_ratio.get("dp_vs_equal_split", 0)
        >= GOALS["vs_equal"],
        # Informational: could any allocator reach the goal on this workload?
        "low_budget_lp_ceiling_vs_equal_ge_1.37": low_ratio.get("lp_bound_vs_equal_split", 0)
        >= GOALS["vs_equal"],
    }
    return {
        "allocator": {
            "seed": seed,
            "snapshots": len(workload),
            "fptas_eps": FPTAS_DEFAULT_EPS,
            "utility_vs_budget": sweep,
            "worst_budget_gap_to_dp": worst_gap,
            "low_budget_ratio": low_ratio,
            "low_budget_ratio_by_budget": low_by_budget,
            "solve_time": times,
            "goals_met": goals,
            "sensitivity": {
                STEEP_UNEQUAL_SHAPE.name: sensitivity(seed, snapshots, STEEP_UNEQUAL_SHAPE),
                "product_tables": profiled_sensitivity(seed, snapshots),
            },
            "plot": str(plot),
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--plot", type=Path, default=Path("bench-results/allocator.png"))
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--snapshots", type=int, default=40, help="arrivals/departures solved")
    arguments = parser.parse_args()
    report = run(arguments.seed, arguments.snapshots, arguments.plot)
    sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
