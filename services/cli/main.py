"""`edgegw`: the operator's command line.

Each subcommand imports what it needs when it runs, so `edgegw --help` and
`edgegw run <stage>` work on a base install without any stage's extras.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import sys
from pathlib import Path

from schemas.topics import STAGES

# `edgegw profile <target>` runs the module profiling.<target>.
PROFILE_TARGETS = {
    "gas": "gas sampling periods vs full rate",
    "audio": "audio classification rates vs full rate",
    "video": "camera and detector levels vs full rate",
}


def _run_stage(name: str) -> int:
    if name not in STAGES:
        print(f"unknown stage {name!r}; stages: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    module = f"services.{name.replace('-', '_')}"
    if importlib.util.find_spec(module) is None:
        print(f"stage {name!r} is not part of this build yet", file=sys.stderr)
        return 2
    try:
        entry = importlib.import_module(f"{module}.__main__")
    except ModuleNotFoundError as error:  # an extra this install left out
        print(f"stage {name!r} needs {error.name!r}, which is not installed", file=sys.stderr)
        return 2
    entry.main()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgegw", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--secrets",
        type=Path,
        help="file with user=password lines (default: var/broker/secrets.env of `make demo`)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one stage in the foreground")
    run.add_argument("stage", help=", ".join(STAGES))
    alerts = commands.add_parser("alerts", help="tail events and alerts")
    alerts.add_argument("--gateway", default="+", help="gateway id, or + for all")
    alerts.add_argument("--count", type=int, help="exit after this many")
    status = commands.add_parser("status", help="availability and health of every stage")
    status.add_argument("--gateway", default="+")
    top = commands.add_parser("top", help="every stage live: rates, drops, memory")
    top.add_argument("--gateway", default="+")
    top.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    top.add_argument("--count", type=int, help="exit after this many refreshes")
    health = commands.add_parser("health", help="exit 0 if a stage is online and healthy")
    health.add_argument("stage", help=", ".join(STAGES))
    health.add_argument("--max-age-s", type=float, help="oldest health report taken as current")
    health.add_argument("--wait", type=float, default=3.0, help="seconds to wait for the broker")
    health.add_argument("--fail-degraded", action="store_true", help="degraded is unhealthy")
    health.add_argument(
        "--broker-down-ok", action="store_true", help="exit 0 when no broker answers (liveness)"
    )
    config = commands.add_parser("config", help="runtime config of a stage")
    config_commands = config.add_subparsers(dest="action", required=True)
    config_set = config_commands.add_parser("set", help="publish retained config and wait")
    config_set.add_argument("stage")
    config_set.add_argument("assignments", nargs="+", metavar="key=value")
    config_set.add_argument("--wait", type=float, default=5.0, help="seconds to wait")
    qos = commands.add_parser("qos", help="bandwidth allocation")
    qos_actions = qos.add_subparsers(dest="action", required=True)
    qos_plan_args = qos_actions.add_parser("plan", help="what each analytic would get (dry run)")
    qos_plan_args.add_argument("--budget", type=float, required=True, help="kbit/s")
    qos_plan_args.add_argument(
        "--solver", default=None, help="dp, fptas, greedy_hull, weighted_split, equal_split"
    )
    qos_plan_args.add_argument("--wait", type=float, default=5.0, help="seconds to wait")
    profile = commands.add_parser(
        "profile",
        help="measure the utility of QoS levels",
        description="`edgegw profile <target> --help` lists the target's own arguments",
    )
    from services.cli import deploy_command  # argparse only; the client is imported to run

    deploy_command.add_arguments(commands.add_parser("deploy", help="deployed analytics"))
    profile_targets = profile.add_subparsers(dest="target", required=True)
    for target, purpose in PROFILE_TARGETS.items():
        # The target's own arguments (and its --help) are parsed by profiling.
        profile_targets.add_parser(target, help=purpose, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "profile":
        from profiling.cli import profile_target

        profile_target(args.target, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "run":
        raise SystemExit(_run_stage(args.stage))
    if args.command == "health":
        from services.cli.health_command import check_health

        raise SystemExit(
            check_health(
                args.stage,
                args.secrets,
                max_age_s=args.max_age_s,
                wait_s=args.wait,
                fail_degraded=args.fail_degraded,
                broker_down_ok=args.broker_down_ok,
            )
        )
    raise SystemExit(_operate(args))


def _operate(args: argparse.Namespace) -> int:
    """The commands that talk to the broker as the operator."""
    from services.cli.session import operator_settings

    settings = operator_settings(args.secrets)
    try:
        if args.command == "alerts":
            from services.cli.watch import tail_alerts

            root = f"{settings.topic_root}/{args.gateway}"
            asyncio.run(tail_alerts(settings, root, args.count))
            code = 0
        elif args.command == "status":
            from services.cli.watch import show_status

            code = asyncio.run(show_status(settings, f"{settings.topic_root}/{args.gateway}"))
        elif args.command == "top":
            from services.cli.top import run_top

            root = f"{settings.topic_root}/{args.gateway}"
            code = asyncio.run(run_top(settings, root, args.interval, args.count))
        elif args.command == "deploy":
            from services.cli import deploy_command

            code = asyncio.run(deploy_command.run(settings, args))
        elif args.command == "qos":
            from services.cli.qos_command import plan as qos_plan

            code = asyncio.run(qos_plan(settings, args.budget, args.solver, args.wait))
        else:
            from services.cli.config_command import set_config

            code = asyncio.run(set_config(settings, args.stage, args.assignments, args.wait))
    except* ConnectionError as group:
        print(f"edgegw: {group.exceptions[0]}", file=sys.stderr)
        code = 3
    except* ValueError as group:
        print(f"edgegw: {group.exceptions[0]}", file=sys.stderr)
        code = 2
    except* KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":
    main()
