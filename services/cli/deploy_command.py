"""`edgegw deploy add|rm|stop|start|ls`: deploy analytics packaged as
container images on a gateway, and see where each one is.

    edgegw deploy add counter edgegw-analytics/hello:1 --saving 800 \\
        --cpus 0.5 --memory-mb 64 --publish analytic_output --env PERIOD_S=1
    edgegw deploy ls
    edgegw deploy rm counter

`add`, `rm`, `stop` and `start` print each state the deployer reports and
exit 0 when the analytic got where it was asked to (running, removed,
stopped), 1 when it failed, 2 when the deployer did not answer in time.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from schemas.deploy import AnalyticState, DeployRequest, DeploySpec, LifecycleRequest
from schemas.topics import DEPLOY_REQUEST, DEPLOY_STATE, OPERATOR
from services.cli.session import with_door
from services.common.door import MqttDoor, Received
from services.common.settings import StageSettings

GOAL = {"deploy": "running", "remove": "removed", "stop": "stopped", "start": "running"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateway", default=None, help="gateway id (default: EDGEGW_GATEWAY_ID)")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="deploy an analytic from the gateway's registry")
    add.add_argument("analytic")
    add.add_argument("image", help="repository:tag or repository@sha256:digest")
    add.add_argument("--saving", type=float, default=0.0, help="upload saved, kbit/s")
    add.add_argument("--cpus", type=float, default=0.5)
    add.add_argument("--memory-mb", type=int, default=64)
    add.add_argument("--pids", type=int, default=64)
    add.add_argument("--lifetime", type=float, default=None, help="seconds, then removed")
    add.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    add.add_argument("--publish", action="append", default=[], metavar="TEMPLATE")
    add.add_argument("--subscribe", action="append", default=[], metavar="TEMPLATE")
    add.add_argument("--restart", choices=("no", "on-failure"), default="on-failure")
    add.add_argument("--max-restarts", type=int, default=2)
    add.add_argument("--wait", type=float, default=120.0, help="seconds to wait")
    for action in ("rm", "stop", "start"):
        sub = actions.add_parser(action, help=f"{action} a deployed analytic")
        sub.add_argument("analytic")
        sub.add_argument("--wait", type=float, default=30.0)
    listing = actions.add_parser("ls", help="every analytic the deployer knows, and its state")
    listing.add_argument("--wait", type=float, default=1.0, help="seconds to collect states")


def _request(args: argparse.Namespace) -> DeployRequest | LifecycleRequest:
    if args.action != "add":
        action = "remove" if args.action == "rm" else args.action
        return LifecycleRequest(source=OPERATOR, action=action, analytic=args.analytic)
    environment = {}
    for assignment in args.env:
        name, equals, value = assignment.partition("=")
        if not equals:
            raise ValueError(f"--env {assignment!r}: expected NAME=VALUE")
        environment[name] = value
    topics = [{"spec": name, "direction": "publish"} for name in args.publish]
    topics += [{"spec": name, "direction": "subscribe"} for name in args.subscribe]
    spec = DeploySpec.model_validate(
        {
            "analytic": args.analytic,
            "image": args.image,
            "upload_saving_kbps": args.saving,
            "lifetime_s": args.lifetime,
            "limits": {"cpus": args.cpus, "memory_mb": args.memory_mb, "pids": args.pids},
            "environment": environment,
            "topics": topics,
            "restart": args.restart,
            "max_restarts": args.max_restarts,
        }
    )
    return DeployRequest(source=OPERATOR, request=spec)


def describe(state: AnalyticState) -> str:
    parts = [f"{state.analytic}: {state.state}"]
    if state.state == "queued" and state.queue_position is not None:
        parts.append(f"(position {state.queue_position})")
    if state.download is not None and state.state == "downloading":
        done, total = state.download.bytes_done, state.download.bytes_total
        parts.append(f"{done / 1e6:.2f}/{total / 1e6:.2f} MB")
    if state.reason:
        parts.append(f"- {state.reason}")
    if state.exit is not None and state.exit.log_tail:
        parts.append("\n    " + "\n    ".join(state.exit.log_tail))
    return " ".join(parts)


async def change(settings: StageSettings, root: str, args: argparse.Namespace) -> int:
    request = _request(args)
    action = request.action
    analytic = request.request.analytic if isinstance(request, DeployRequest) else request.analytic
    goal = GOAL[action]
    outcome: list[AnalyticState] = []
    finished = asyncio.Event()
    sent = asyncio.Event()

    async def on_state(message: Received[AnalyticState | None]) -> None:
        state = message.payload
        if state is None or message.retained or not sent.is_set():
            return
        print(describe(state), flush=True)
        if state.state in (goal, "failed"):
            outcome.append(state)
            finished.set()

    def prepare(door: MqttDoor) -> None:
        door.subscribe(DEPLOY_STATE, on_state, analytic=analytic)

    async def body(door: MqttDoor) -> int:
        sent.set()
        await door.publish(DEPLOY_REQUEST, request)
        try:
            async with asyncio.timeout(args.wait):
                await finished.wait()
        except TimeoutError:
            print(f"no answer from the deployer within {args.wait} s", flush=True)
            return 2
        return 0 if outcome[-1].state == goal else 1

    return await with_door(settings, root, prepare, body)


def format_states(states: list[AnalyticState]) -> str:
    headers = ("analytic", "state", "image", "cpus", "memory", "saving", "since", "reason")
    rows = []
    now = time.time()
    for state in sorted(states, key=lambda s: s.analytic):
        spec = state.spec
        rows.append(
            (
                state.analytic,
                state.state,
                spec.image if spec else "-",
                f"{spec.limits.cpus:g}" if spec else "-",
                f"{spec.limits.memory_mb} MB" if spec else "-",
                f"{spec.upload_saving_kbps:g} kbit/s" if spec else "-",
                f"{now - state.ts:.0f} s",
                state.reason[:60],
            )
        )
    if not rows:
        return "no analytic deployed"
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


async def listing(settings: StageSettings, root: str, wait_s: float) -> int:
    found: dict[str, AnalyticState] = {}

    async def on_state(message: Received[AnalyticState | None]) -> None:
        if message.payload is None:
            found.pop(message.params["analytic"], None)
        else:
            found[message.params["analytic"]] = message.payload

    def prepare(door: MqttDoor) -> None:
        door.subscribe(DEPLOY_STATE, on_state)

    async def body(door: MqttDoor) -> int:
        await asyncio.sleep(wait_s)  # the retained states arrive right after subscribing
        print(format_states(list(found.values())))
        return 0

    return await with_door(settings, root, prepare, body)


async def run(settings: StageSettings, args: argparse.Namespace) -> int:
    root = f"{settings.topic_root}/{args.gateway or settings.gateway_id}"
    if args.action == "ls":
        return await listing(settings, root, args.wait)
    return await change(settings, root, args)
