"""From the offered levels, the weights and a budget to a plan: which level
each analytic runs at. Pure and blocking (the stage runs it in a thread)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from schemas.qos import Hosted, PlanChoice, QosLevel, QosLevels, QosPlan
from schemas.topics import BANDWIDTH_ALLOCATOR
from services.bandwidth_allocator.levels import Analytic, LevelPoint
from services.bandwidth_allocator.settings import AllocatorConfig
from services.bandwidth_allocator.solvers import SOLVERS, Allocation, solve_fptas

log = logging.getLogger(__name__)
# What the allocator falls back to when the chosen solver refuses an instance
# (a DP or FPTAS table over its size cap): fast and within ~1 % of optimal.
FALLBACK_SOLVER = "greedy_hull"


@dataclass(frozen=True)
class Plan:
    summary: QosPlan
    levels: dict[str, QosLevel]  # analytic -> the level it must run at


def _solve(
    solver: str, analytics: Sequence[Analytic], budget_kbps: float, eps: float
) -> Allocation:
    if solver == "fptas":
        return solve_fptas(analytics, budget_kbps, eps)
    return SOLVERS[solver](analytics, budget_kbps)


def make_plan(
    offers: Sequence[QosLevels],
    config: AllocatorConfig,
    budget_kbps: float,
    *,
    solver: str | None = None,
    plan_id: str,
    dry_run: bool = False,
    hosting: Mapping[str, Hosted] | None = None,
) -> Plan:
    """Solve with `solver` (default: the config's); an unknown solver name
    gives an infeasible plan that says so, never an exception. Each level
    costs what it uploads where its analytic runs (`hosting`; absent: on the
    gateway)."""
    hosting = hosting or {}
    name = solver or config.solver
    started = time.perf_counter()
    if name not in SOLVERS:
        reason = f"unknown solver {name!r}; solvers: {', '.join(SOLVERS)}"
        return Plan(_summary(plan_id, dry_run, name, budget_kbps, [], False, reason, 0.0), {})
    offers = [pinned(offer, config.pinned_levels.get(offer.analytic)) for offer in offers]
    hosted = {offer.analytic: hosting.get(offer.analytic, "gateway") for offer in offers}
    analytics = [
        Analytic(
            offer.analytic,
            config.weight_of(offer.analytic),
            tuple(
                LevelPoint(level.cost_hosted(hosted[offer.analytic]), level.utility)
                for level in offer.levels
            ),
        )
        for offer in offers
    ]
    notes: list[str] = []
    try:
        allocation = _solve(name, analytics, budget_kbps, config.eps)
    except ValueError as error:
        log.warning("solver refused the instance", extra={"solver": name, "error": str(error)})
        notes.append(f"{name} refused ({error}); {FALLBACK_SOLVER} used")
        name = FALLBACK_SOLVER
        allocation = SOLVERS[name](analytics, budget_kbps)
    if allocation.reason:
        notes.insert(0, allocation.reason)
    chosen = {
        offer.analytic: offer.levels[index]
        for offer, index in zip(offers, allocation.choices, strict=True)
    }
    choices = [
        PlanChoice(
            analytic=analytic.name,
            level=chosen[analytic.name].name,
            cost_kbps=chosen[analytic.name].cost_hosted(hosted[analytic.name]),
            hosted=hosted[analytic.name],
            utility=chosen[analytic.name].utility,
            weight=analytic.weight,
        )
        for analytic in analytics
    ]
    summary = _summary(
        plan_id,
        dry_run,
        name,
        budget_kbps,
        choices,
        allocation.feasible,
        "; ".join(notes),
        (time.perf_counter() - started) * 1000,
        cost_kbps=allocation.cost_kbps,
        total_utility=allocation.total_utility,
    )
    return Plan(summary, chosen)


def _summary(
    plan_id: str,
    dry_run: bool,
    solver: str,
    budget_kbps: float,
    choices: list[PlanChoice],
    feasible: bool,
    reason: str,
    solve_ms: float,
    *,
    cost_kbps: float = 0.0,
    total_utility: float = 0.0,
) -> QosPlan:
    return QosPlan(
        source=BANDWIDTH_ALLOCATOR,
        plan_id=plan_id,
        dry_run=dry_run,
        solver=solver,
        budget_kbps=budget_kbps,
        cost_kbps=round(cost_kbps, 6),
        total_utility=round(total_utility, 6),
        feasible=feasible,
        reason=reason,
        solve_ms=round(solve_ms, 3),
        choices=choices,
    )


def changed_levels(
    plan: Mapping[str, QosLevel], published: Mapping[str, QosLevel]
) -> dict[str, QosLevel]:
    """The analytics whose chosen level differs from the one last published."""
    return {name: level for name, level in plan.items() if published.get(name) != level}


def pinned(offer: QosLevels, level: str | None) -> QosLevels:
    """`offer` with only its level named `level`; unchanged when that level is
    not offered (a stale pin must not take the analytic off the plan)."""
    kept = [candidate for candidate in offer.levels if candidate.name == level]
    return offer.model_copy(update={"levels": kept}) if kept else offer
