"""`edgegw qos plan --budget N [--solver S]`: ask the bandwidth allocator what
each analytic would get at N kbit/s (a dry run: nothing changes) and print
the answer as a table."""

from __future__ import annotations

import asyncio

from schemas.envelope import new_id
from schemas.qos import PlanRequest, QosPlan
from schemas.topics import OPERATOR, PLAN_REQUEST, PLAN_RESPONSE
from services.cli.session import with_door
from services.common.door import MqttDoor, Received
from services.common.pacing import wait_set
from services.common.settings import StageSettings


def format_plan(plan: QosPlan) -> str:
    """A readable table of a plan: one row per analytic, then the totals."""
    headers = ("analytic", "level", "kbit/s", "utility", "weight")
    rows = [
        (c.analytic, c.level, f"{c.cost_kbps:.1f}", f"{c.utility:.3f}", f"{c.weight:g}")
        for c in plan.choices
    ]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    numeric = (False, False, True, True, True)

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    out = [line(headers), line(tuple("-" * w for w in widths))]
    out += [line(row) for row in rows]
    weight = sum(c.weight for c in plan.choices)
    mean = f" (mean {plan.total_utility / weight:.3f})" if weight else ""
    out.append("")
    out.append(
        f"budget {plan.budget_kbps:g} kbit/s, used {plan.cost_kbps:.1f} kbit/s, "
        f"weighted utility {plan.total_utility:.3f}{mean}"
    )
    out.append(f"solver {plan.solver}, solved in {plan.solve_ms:.2f} ms, dry run: nothing changed")
    if not plan.choices and plan.feasible:
        out.insert(0, "no analytic offers levels at the moment")
    if not plan.feasible:
        out.append(f"NOT FEASIBLE: {plan.reason}")
    elif plan.reason:
        out.append(f"note: {plan.reason}")
    return "\n".join(out)


async def plan(
    settings: StageSettings, budget_kbps: float, solver: str | None, wait_s: float
) -> int:
    """Publish a dry-run request, print the allocator's answer.

    0: answered (a budget below every analytic's cheapest level is an answer
    too: the table says NOT FEASIBLE); 1: the allocator refused the request
    (an unknown solver: an infeasible plan with no choices); 2: no answer
    within `wait_s`.
    """
    request = PlanRequest(
        source=OPERATOR, request_id=new_id(), budget_kbps=budget_kbps, solver=solver
    )
    answers: list[QosPlan] = []
    answered = asyncio.Event()

    async def on_response(message: Received[QosPlan]) -> None:
        answers.append(message.payload)
        answered.set()

    def prepare(door: MqttDoor) -> None:
        door.subscribe(PLAN_RESPONSE, on_response, request_id=request.request_id)

    async def body(door: MqttDoor) -> int:
        await door.publish(PLAN_REQUEST, request)
        if not await wait_set(answered, wait_s):
            print(f"the bandwidth allocator did not answer within {wait_s} s (is it running?)")
            return 2
        answer = answers[0]
        print(format_plan(answer))
        return 1 if not answer.feasible and not answer.choices else 0

    return await with_door(settings, settings.root, prepare, body)
