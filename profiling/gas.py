"""`edgegw profile gas`: the utility of each gas sampling period, measured.

For every gas, seeded simulated sensors (gas-replay's simulator: baseline,
drift, noise, leak episodes) are sampled at the reference period (0.25 s,
the full-rate run). Each level is the same signal decimated to its period
(a sensor read less often sees a subset of the same air), fed through
gas-average's own logic (moving average, thresholds with hysteresis,
minimum duration) with its default config. Against the full-rate run:

- recall: share of the reference leak episodes that the level also alarms
  on (its episode overlaps the reference one);
- delay: mean extra time to the alarm, over detected episodes; a late alarm
  is worth less: factor 0.5 ** (delay / LATENCY_HALF_LIFE_S);
- mean abs error of the moving average the level reports (held until its
  next reading) against the reference one, over every reference sample,
  relative to the gas's alarm threshold: accuracy = 1 - error.

utility = recall x latency factor x accuracy (1 for the reference period).

Regenerate the table gas-replay publishes (deterministic for given seeds):

    python -m profiling.gas --out services/gas_replay/gas_levels.json
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profiling.cli import profile_main, write_table
from profiling.timeliness import timeliness
from schemas.gas import Gas, GasReading
from services.gas_average.series import SeriesBook
from services.gas_average.settings import DEFAULT_THRESHOLDS, GasAverageConfig
from services.gas_replay.levels import PROFILE_PATH, GasProfile, ProfiledLevel
from services.gas_replay.simulator import make_sensors

REFERENCE_PERIOD_S = 0.25
PERIODS_S = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
LATENCY_HALF_LIFE_S = 30.0
DEFAULT_SEEDS = (4, 5, 6)
DEFAULT_HOURS = 1.0
DEFAULT_LEAKS_PER_HOUR = 12.0
REGENERATE = "python -m profiling.gas --out services/gas_replay/gas_levels.json"


@dataclass(frozen=True)
class ProfiledGasEpisode:
    alarm_at: float  # the reading time at which `new` was raised
    start: float
    end: float


@dataclass(frozen=True)
class Run:
    times: np.ndarray  # reading times
    averages: np.ndarray  # the time-window average after each reading
    episodes: list[ProfiledGasEpisode]


def simulate(gas: Gas, seed: int, hours: float, leaks_per_hour: float) -> np.ndarray:
    """One sensor's full-rate samples (values at t = k x REFERENCE_PERIOD_S)."""
    sensor = make_sensors([("profile", gas)], leaks_per_hour, seed)[0]
    count = round(hours * 3600 / REFERENCE_PERIOD_S)
    return np.array(
        [sensor.sample(k * REFERENCE_PERIOD_S, REFERENCE_PERIOD_S) for k in range(count)]
    )


def run_gas_average(gas: Gas, values: np.ndarray, period_s: float) -> Run:
    """gas-average's logic on every `period_s / REFERENCE_PERIOD_S`-th sample."""
    step = round(period_s / REFERENCE_PERIOD_S)
    book = SeriesBook(GasAverageConfig(publish_interval_s=0.0), max_series=1)
    times, averages, episodes = [], [], []
    opened: tuple[float, float] | None = None
    for k in range(0, len(values), step):
        t = k * REFERENCE_PERIOD_S
        reading = GasReading(source="profile", sensor="profile", gas=gas, value=values[k], ts=t)
        outcome = book.observe(reading, t)
        assert outcome.average is not None
        times.append(t)
        averages.append(outcome.average.time_average)
        event = outcome.event
        if event is not None and event.type == "new":
            opened = (t, event.start_ts)
        elif event is not None and event.type == "end" and opened is not None:
            episodes.append(ProfiledGasEpisode(opened[0], opened[1], t))
            opened = None
    if opened is not None:
        episodes.append(ProfiledGasEpisode(opened[0], opened[1], len(values) * REFERENCE_PERIOD_S))
    return Run(np.array(times), np.array(averages), episodes)


@dataclass(frozen=True)
class Comparison:
    detected: int
    reference_episodes: int
    delays: list[float]
    abs_error_sum: float
    samples: int


def compare(reference: Run, level: Run) -> Comparison:
    delays = []
    for wanted in reference.episodes:
        overlapping = [e for e in level.episodes if e.start <= wanted.end and e.end >= wanted.start]
        if overlapping:
            delays.append(max(0.0, overlapping[0].alarm_at - wanted.alarm_at))
    # The level's average in force at each reference time: its latest reading's.
    held = np.searchsorted(level.times, reference.times, side="right") - 1
    error = np.abs(reference.averages - level.averages[np.maximum(held, 0)])
    return Comparison(len(delays), len(reference.episodes), delays, float(error.sum()), len(error))


def profile_gas(
    gas: Gas, seeds: Sequence[int], hours: float, leaks_per_hour: float
) -> list[ProfiledLevel]:
    threshold = DEFAULT_THRESHOLDS[gas].enter
    totals = {period: Comparison(0, 0, [], 0.0, 0) for period in PERIODS_S}
    for seed in seeds:
        values = simulate(gas, seed, hours, leaks_per_hour)
        reference = run_gas_average(gas, values, REFERENCE_PERIOD_S)
        for period in PERIODS_S:
            found = compare(reference, run_gas_average(gas, values, period))
            total = totals[period]
            totals[period] = Comparison(
                total.detected + found.detected,
                total.reference_episodes + found.reference_episodes,
                total.delays + found.delays,
                total.abs_error_sum + found.abs_error_sum,
                total.samples + found.samples,
            )
    levels = []
    for period, total in totals.items():
        recall, delay, timely = timeliness(
            total.detected, total.reference_episodes, total.delays, LATENCY_HALF_LIFE_S
        )
        error = total.abs_error_sum / total.samples / threshold
        utility = timely * max(0.0, 1.0 - error)
        levels.append(
            ProfiledLevel(
                period_s=period,
                utility=round(utility, 4),
                recall=round(recall, 4),
                mean_delay_s=round(delay, 3),
                mean_abs_error=round(error, 5),
            )
        )
    return levels


def build_profile(
    gases: Sequence[Gas], seeds: Sequence[int], hours: float, leaks_per_hour: float
) -> GasProfile:
    return GasProfile(
        generated_by=REGENERATE,
        reference_period_s=REFERENCE_PERIOD_S,
        seeds=list(seeds),
        hours_per_seed=hours,
        leaks_per_hour=leaks_per_hour,
        latency_half_life_s=LATENCY_HALF_LIFE_S,
        gases={gas: profile_gas(gas, seeds, hours, leaks_per_hour) for gas in gases},
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=PROFILE_PATH, help="JSON table to write")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--hours", type=float, default=DEFAULT_HOURS, help="per seed and gas")
    parser.add_argument("--leaks-per-hour", type=float, default=DEFAULT_LEAKS_PER_HOUR)
    parser.add_argument(
        "--gases", nargs="+", choices=sorted(DEFAULT_THRESHOLDS), default=sorted(DEFAULT_THRESHOLDS)
    )


def profile_command(args: argparse.Namespace) -> int:
    """What `edgegw profile gas` runs: write the table, print a summary."""
    profile = build_profile(args.gases, args.seeds, args.hours, args.leaks_per_hour)
    summary = (
        f"{gas:8} " + "  ".join(f"{lv.period_s:g}s:{lv.utility:.3f}" for lv in levels)
        for gas, levels in profile.gases.items()
    )
    return write_table(args.out, profile, summary)


def main(argv: list[str] | None = None) -> None:
    profile_main(__doc__, add_arguments, profile_command, argv)


if __name__ == "__main__":
    main()
