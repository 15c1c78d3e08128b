"""Seed 004's model of an analytic's upload, priced by where it runs.

A cloud-hosted analytic sends its raw data over the uplink (its raw-upload
model); a gateway-hosted one uploads only its results (its edge model). The
knob k is the analytic's quality setting (yolo: image-area fraction, audio:
fraction of the sampling rate). Every number comes from the seed's
`models.json` (../shared/seed004/), parsed by `Seed004Models.from_json`; this
module does no I/O.

Also here: the seed's own allocators as the seed implements them, as
baselines (`seed_weighted_split`, `seed_equal_split`: shares uncapped, the
surplus over a full-rate analytic wasted; `seed_raa_greedy`: the RAA greedy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from schemas.qos import QosLevel
from services.bandwidth_allocator.levels import Analytic, LevelPoint

Kind = Literal["yolo", "audio"]
KINDS: tuple[Kind, ...] = ("yolo", "audio")
# Our solvers' knob grid: the gateway rounds knobs to 3 d.p. (models.json ->
# knobs.audio.gateway_mapping), so nothing finer is ever applied.
KNOB_STEP = 0.001


class Era(StrEnum):
    """The two bandwidth-model eras of models.json -> bandwidth_models."""

    MAY_2020 = "may_2020_quadratic"  # every globecom2020 run (requests_5_1_10_25_*)
    AUG_2020 = "aug_2020_linear"  # the Aug FPTAS runs (requests_3_1_10_30_*)


class WeightMapping(StrEnum):
    """models.json -> weights.index_mappings: which of the 24 weights an analytic gets."""

    SCORED = "scored"  # WA and the measured-QoS parser: audio k -> p_k, yolo k -> p_{12+k}
    RAA_MAY = "raa_may"  # RAA May bytecode and UA's report: audio -> p_d, yolo -> p_{4+d}
    RAA_AUG = "raa_aug"  # RAA Aug source: audio -> p_d, yolo -> p_{12+d}


def kind_of(analytic_type: str) -> Kind:
    for kind in KINDS:
        if analytic_type.startswith(kind):
            return kind
    raise ValueError(f"not a seed-004 analytic type: {analytic_type!r}")


def weight_of(analytic_type: str, weights: Sequence[float], mapping: WeightMapping) -> float:
    """The weight (of the 24 positions) an analytic type gets under a mapping.
    d is the first digit of the type number, so 10-12 alias to 1."""
    kind = kind_of(analytic_type)
    number = int(analytic_type[len(kind) :])
    digit = int(str(number)[0])
    if kind == "audio":
        position = number if mapping is WeightMapping.SCORED else digit
    elif mapping is WeightMapping.SCORED:
        position = 12 + number
    else:
        position = (4 if mapping is WeightMapping.RAA_MAY else 12) + digit
    return weights[position - 1]


def _poly(coeffs: Sequence[float], knob: float) -> float:
    value = 0.0
    for c in coeffs:  # highest degree first; one value = a constant
        value = value * knob + c
    return value


@dataclass(frozen=True, slots=True)
class AccuracyTable:
    thresholds: tuple[float, ...]
    values: tuple[float, ...]
    above_last: float

    def at(self, knob: float) -> float:
        """The WA/UA comparison (k <= threshold at every step); a knob <= 0
        means the analytic sends nothing and scores 0."""
        if knob <= 0:
            return 0.0
        for threshold, value in zip(self.thresholds, self.values, strict=True):
            if knob <= threshold:
                return value
        return self.above_last


@dataclass(frozen=True, slots=True)
class FallbackRule:
    bound: float
    strict: bool  # knob > bound (else knob >= bound)
    accuracy: float


@dataclass(frozen=True, slots=True)
class Seed004Models:
    era: Era
    raw: Mapping[Kind, tuple[float, ...]]
    edge: Mapping[Kind, tuple[float, ...]]
    expected: Mapping[Kind, AccuracyTable]
    audio_fallback: tuple[FallbackRule, ...]
    audio_fallback_else: float
    yolo_fallback: float
    raa_curve: Mapping[Kind, tuple[float, ...]]
    raa_start: Mapping[Kind, float]
    raa_min: Mapping[Kind, float]
    raa_max: float
    raa_step: float
    audio_min_useful: float
    saving_kbps: Mapping[Kind, float]  # the IDA's value of one gateway-hosted analytic
    parser_saving_kbps: Mapping[Kind, float]  # the parsers' 688 / 23

    @classmethod
    def from_json(cls, models: Mapping[str, Any], era: Era) -> Seed004Models:
        bw = models["bandwidth_models"][era.value]
        tables = models["expected_accuracy_tables"]
        fallback = models["measured_accuracy_fallback"]
        bounds = models["knobs"]["raa_bounds"]
        rules: list[FallbackRule] = []
        otherwise = 0.0
        for rule in fallback["audio"]:
            if "knob_gt" in rule:
                rules.append(FallbackRule(float(rule["knob_gt"]), True, float(rule["acc"])))
            elif "knob_ge" in rule:
                rules.append(FallbackRule(float(rule["knob_ge"]), False, float(rule["acc"])))
            else:
                otherwise = float(rule["acc"])
        yolo_start = bounds["yolo_start_and_min"]["may_2020" if era is Era.MAY_2020 else "aug_2020"]
        alpha = models["knobs"]["raa_step_alpha"]
        step = alpha["globecom2020_logs"] if era is Era.MAY_2020 else alpha["aug_fptas_logs"]
        ida = models["ida"]["value_kbps_per_type"]
        return cls(
            era=era,
            raw={k: tuple(bw[f"{k}_raw"]) for k in KINDS},
            edge={k: tuple(bw[f"{k}_edge"]) for k in KINDS},
            expected={
                k: AccuracyTable(
                    tuple(tables[k]["thresholds"]),
                    tuple(tables[k]["values"]),
                    float(tables[k]["above_last"]),
                )
                for k in KINDS
            },
            audio_fallback=tuple(rules),
            audio_fallback_else=otherwise,
            yolo_fallback=float(fallback["yolo"]),
            raa_curve={k: tuple(bw[f"raa_qos_curve_{k}"]["coeffs"]) for k in KINDS},
            raa_start={"yolo": float(yolo_start), "audio": float(bounds["audio_start"])},
            raa_min={"yolo": float(yolo_start), "audio": float(bounds["audio_min"])},
            raa_max=float(bounds["max"]),
            raa_step=float(step),
            audio_min_useful=float(models["knobs"]["audio"]["minimum_useful"]),
            saving_kbps={k: float(ida[k]) for k in KINDS},
            parser_saving_kbps={k: float(models["saved_bandwidth_parser_kbps"][k]) for k in KINDS},
        )

    # ------------------------------------------------------------ pricing

    def upload_kbps(self, kind: Kind, on_gateway: bool, knob: float) -> float:
        """Uplink use at knob k: results when on the gateway, raw data when in the cloud."""
        return _poly((self.edge if on_gateway else self.raw)[kind], knob)

    def expected_accuracy(self, kind: Kind, knob: float) -> float:
        return self.expected[kind].at(knob)

    def measured_accuracy(self, kind: Kind, knob: float) -> float:
        """The measured-QoS parser's fallback table (models.json ->
        measured_accuracy_fallback); a knob <= 0 (nothing sent) scores 0."""
        if knob <= 0:
            return 0.0
        if kind == "yolo":
            return self.yolo_fallback
        for rule in self.audio_fallback:
            if (knob > rule.bound) if rule.strict else (knob >= rule.bound):
                return rule.accuracy
        return self.audio_fallback_else

    def knob_levels(
        self, kind: Kind, on_gateway: bool, measured: bool = False
    ) -> tuple[tuple[float, LevelPoint], ...]:
        """(knob, level) pairs for our solvers: off (0 kbit/s, utility 0), then
        for each accuracy step the cheapest knob on the 0.001 grid reaching it,
        under the expected tables (or, `measured`, the measured fallback table).
        The whole knob range is offered, as to the seed's WA/UA: the expected
        table credits audio below its useful minimum (0.4) with 0.2-0.25,
        though the gateway sends nothing useful there (models.json ->
        knobs.audio) and the measured table gives it 0.143."""
        lowest = KNOB_STEP
        best: dict[float, tuple[float, float]] = {}
        steps = round((1.0 - lowest) / KNOB_STEP)
        for i in range(steps + 1):
            knob = round(lowest + i * KNOB_STEP, 3)
            utility = (self.measured_accuracy if measured else self.expected_accuracy)(kind, knob)
            cost = self._cost(kind, on_gateway, knob)
            if utility not in best or cost < best[utility][1]:
                best[utility] = (knob, cost)
        points = [(0.0, LevelPoint(0.0, 0.0))]
        points += [(knob, LevelPoint(cost, u)) for u, (knob, cost) in sorted(best.items())]
        return tuple(points)

    def level_table(self, kind: Kind, measured: bool = False) -> list[QosLevel]:
        """The one level table a seed analytic offers (`qos/<analytic>/levels`),
        priced both ways: each level of `knob_levels` with its results
        (`cost_kbps`, run on the gateway) and its raw upload (`raw_cost_kbps`,
        run in the cloud) at the same knob; both models rise with the knob, so
        the cheapest knob of an accuracy step is the same in both places."""
        return [
            QosLevel(
                name="off" if knob == 0 else f"k{knob:.3f}",
                params={"knob": knob},
                cost_kbps=point.cost_kbps if knob == 0 else self._cost(kind, True, knob),
                raw_cost_kbps=point.cost_kbps if knob == 0 else self._cost(kind, False, knob),
                utility=point.utility,
            )
            for knob, point in self.knob_levels(kind, on_gateway=False, measured=measured)
        ]

    def _cost(self, kind: Kind, on_gateway: bool, knob: float) -> float:
        return max(0.0, self.upload_kbps(kind, on_gateway, knob))


@dataclass(frozen=True, slots=True)
class Instance:
    """One running analytic as the allocator sees it."""

    name: str
    analytic_type: str
    on_gateway: bool

    @property
    def kind(self) -> Kind:
        return kind_of(self.analytic_type)


def solver_input(
    instances: Sequence[Instance],
    models: Seed004Models,
    weights: Sequence[float],
    measured: bool = False,
) -> tuple[list[Analytic], list[tuple[float, ...]]]:
    """`Analytic`s for the allocator's solvers (weights by the scored mapping)
    and, per instance, the knob of each of its levels; utilities from the
    expected tables, or from the measured fallback table when `measured`."""
    analytics: list[Analytic] = []
    knobs: list[tuple[float, ...]] = []
    cache: dict[tuple[Kind, bool], tuple[tuple[float, LevelPoint], ...]] = {}
    for instance in instances:
        key = (instance.kind, instance.on_gateway)
        if key not in cache:
            cache[key] = models.knob_levels(*key, measured=measured)
        pairs = cache[key]
        weight = weight_of(instance.analytic_type, weights, WeightMapping.SCORED)
        analytics.append(Analytic(instance.name, weight, tuple(p for _, p in pairs)))
        knobs.append(tuple(k for k, _ in pairs))
    return analytics, knobs


def weighted_qos(
    instances: Sequence[Instance],
    knobs: Sequence[float],
    weights: Sequence[float],
    accuracy: Callable[[Kind, float], float],
) -> float:
    """sum(w x accuracy(kind, knob)) / sum(w) with the scored weights; the
    seed's "overall weighted QoS"."""
    total = 0.0
    weight_sum = 0.0
    for instance, knob in zip(instances, knobs, strict=True):
        w = weight_of(instance.analytic_type, weights, WeightMapping.SCORED)
        total += w * accuracy(instance.kind, knob)
        weight_sum += w
    return total / weight_sum if weight_sum > 0 else 0.0


# ------------------------------------------------------------ the seed's allocators


def _solve_knob(coeffs: Sequence[float], target: float, start: float) -> float:
    """The knob where a bandwidth model equals `target`, as scipy's fsolve
    started at `start` lands on these models: a constant model has no root
    (fsolve returns its start), a line its one root, a concave quadratic the
    root on the start's side of its vertex, or the vertex if there is none."""
    c = list(coeffs)
    while len(c) > 1 and c[0] == 0:
        c.pop(0)
    if len(c) == 1:
        return start
    if len(c) == 2:
        return (target - c[1]) / c[0]
    a, b, c0 = c[0], c[1], c[2] - target
    vertex = -b / (2 * a)
    disc = b * b - 4 * a * c0
    if disc < 0:
        return vertex
    roots = sorted(((-b - math.sqrt(disc)) / (2 * a), (-b + math.sqrt(disc)) / (2 * a)))
    return roots[0] if start <= vertex else roots[1]


def _seed_table_accuracy(table: AccuracyTable, knob: float) -> float:
    """WA/UA's own comparison: k <= threshold, no zero case (a knob at or below
    0 gets the lowest value)."""
    for threshold, value in zip(table.thresholds, table.values, strict=True):
        if knob <= threshold:
            return value
    return table.above_last


def seed_split(
    instances: Sequence[Instance],
    shares: Sequence[float],
    models: Seed004Models,
) -> list[float]:
    """Knob per instance for the seed's WA/UA: each instance's share solved for
    its knob from the start 1 (models.json -> knobs.wa_ua_solver); nothing caps a
    share at the full-rate cost and nothing redistributes a surplus."""
    knobs: list[float] = []
    for instance, share in zip(instances, shares, strict=True):
        model = (models.edge if instance.on_gateway else models.raw)[instance.kind]
        knobs.append(_solve_knob(model, share, 1.0))
    return knobs


def seed_weighted_split(
    instances: Sequence[Instance],
    budget_kbps: float,
    models: Seed004Models,
    weights: Sequence[float],
) -> list[float]:
    """WA: shares in proportion to the scored weights, over every instance
    (cloud and gateway)."""
    w = [weight_of(i.analytic_type, weights, WeightMapping.SCORED) for i in instances]
    total = sum(w)
    return seed_split(instances, [budget_kbps * x / total for x in w], models)


def seed_equal_split(
    instances: Sequence[Instance], budget_kbps: float, models: Seed004Models
) -> list[float]:
    """UA: equal shares over every instance."""
    n = len(instances)
    return seed_split(instances, [budget_kbps / n] * n, models)


def seed_split_accuracy(models: Seed004Models, kind: Kind, knob: float) -> float:
    """How WA/UA score their own knobs (the seed's table comparison)."""
    return _seed_table_accuracy(models.expected[kind], knob)


@dataclass(slots=True)
class _RaaAnalytic:
    instance: Instance
    weight: float  # RAA's weight (its own mapping)
    priority: float  # weight, +1 for yolo: who is zeroed last when nothing fits
    knob: float


def _raa_qos(models: Seed004Models, kind: Kind, knob: float) -> float:
    c = models.raa_curve[kind]
    if models.era is Era.MAY_2020:
        return _poly(c, knob) * 1000
    if kind == "yolo":
        if knob <= 0 or c[1] * knob <= 0:
            return 0.0
        return max(0.0, c[0] * math.log(c[1] * knob)) * 1000
    return (c[0] * math.exp(c[1] * knob) + c[2]) * 1000


def seed_raa_greedy(
    instances: Sequence[Instance],
    budget_kbps: float,
    models: Seed004Models,
    weights: Sequence[float],
    mapping: WeightMapping | None = None,
) -> list[float]:
    """A re-implementation of the seed's RAA greedy.

    Every instance starts at the era's start knob. While budget is left, the
    instance with the highest weight x QoS(k) / raw-upload(k) (the seed's
    curves; raw upload even for a gateway-hosted instance) is raised by one
    step alpha (below its minimum knob: straight to the minimum), paying the
    change of its real upload (results on the gateway, raw in the cloud); an
    instance past 1 is set to 1 and leaves the race; when a step does not fit,
    its knob is solved to use the rest of the budget exactly and the greedy
    ends; when even its minimum does not fit, it leaves the race. The
    initial knobs' upload is never charged (as in the seed). If even the
    start knobs' raw upload exceeds the budget, the lowest-priority instances
    (yolo +1) are set to 0 first.

    `mapping` defaults to the seed's own (May bytecode: yolo -> p_{4+d}) for
    that era; pass `WeightMapping.SCORED` for a fair RAA.
    """
    if mapping is None:
        mapping = WeightMapping.RAA_MAY if models.era is Era.MAY_2020 else WeightMapping.RAA_AUG
    racers: list[_RaaAnalytic] = []
    for instance in instances:
        w = weight_of(instance.analytic_type, weights, mapping)
        bump = 1.0 if instance.kind == "yolo" else 0.0
        racers.append(_RaaAnalytic(instance, w, w + bump, models.raa_start[instance.kind]))
    active = list(racers)
    zeroed: set[int] = set()

    def raw(r: _RaaAnalytic, knob: float) -> float:
        return models.upload_kbps(r.instance.kind, False, knob)

    def real(r: _RaaAnalytic, knob: float) -> float:
        return models.upload_kbps(r.instance.kind, r.instance.on_gateway, knob)

    start_total = sum(raw(r, r.knob) for r in active)
    while active and start_total > budget_kbps:
        lowest = min(active, key=lambda r: r.priority)
        active.remove(lowest)
        zeroed.add(id(lowest))
        start_total -= raw(lowest, models.raa_min[lowest.instance.kind])
    step = models.raa_step
    left = budget_kbps
    racing = [r for r in active if r.knob < 1]
    while left > 0 and racing:

        def gain(r: _RaaAnalytic) -> float:
            cost = raw(r, r.knob)
            return r.weight * _raa_qos(models, r.instance.kind, r.knob) / cost

        best = max(racing, key=gain)
        low = models.raa_min[best.instance.kind]
        target = best.knob + step
        if best.knob < low:
            target = low
            after = left - real(best, target)
            after_full = left - real(best, 1.0)
        else:
            after = left + real(best, best.knob) - real(best, target)
            after_full = left + real(best, best.knob) - real(best, 1.0)
        if target <= 1 and after >= 0:
            best.knob = target
            left = after
            if best.knob == 1:
                racing.remove(best)
        elif target > 1 and after_full >= 0:
            best.knob = 1.0
            racing.remove(best)
            left = after_full
        elif target >= low:
            model = (models.edge if best.instance.on_gateway else models.raw)[best.instance.kind]
            best.knob = _solve_knob(model, left + real(best, best.knob), best.knob)
            left = 0
        else:
            racing.remove(best)
    return [0.0 if id(r) in zeroed else r.knob for r in racers]


def seed_raa_accuracy(models: Seed004Models, kind: Kind, knob: float) -> float:
    """RAA's own comparison (models.json -> expected_accuracy_tables.comparison_RAA):
    0 at k == 0; audio k <= first threshold, then k < threshold; yolo k <= threshold."""
    table = models.expected[kind]
    if knob == 0:
        return 0.0
    if kind == "yolo":
        return _seed_table_accuracy(table, knob)
    if knob <= table.thresholds[0]:
        return table.values[0]
    for threshold, value in zip(table.thresholds[1:], table.values[1:], strict=True):
        if knob < threshold:
            return value
    return table.above_last
