"""`edgegw`: the operator's command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

from schemas.topics import STAGES
from services.bandwidth_allocator import profile_audio, profile_gas, profile_video
from services.cli import deploy_command
from services.cli.config_command import set_config
from services.cli.qos_command import plan as qos_plan
from services.cli.session import operator_settings
from services.cli.watch import show_status, tail_alerts


def _run_stage(name: str) -> int:
    if name not in STAGES:
        print(f"unknown stage {name!r}; stages: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    try:
        entry = importlib.import_module(f"services.{name.replace('-', '_')}.__main__")
    except ModuleNotFoundError:
        print(f"stage {name!r} is not part of this build yet", file=sys.stderr)
        return 2
    entry.main()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgegw", description=__doc__)
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
    deploy_command.add_arguments(commands.add_parser("deploy", help="deployed analytics"))
    profile = commands.add_parser("profile", help="measure the utility of QoS levels")
    profile_targets = profile.add_subparsers(dest="target", required=True)
    profile_gas.add_arguments(
        profile_targets.add_parser("gas", help="gas sampling periods vs full rate")
    )
    profile_audio.add_arguments(
        profile_targets.add_parser("audio", help="audio classification rates vs full rate")
    )
    profile_video.add_arguments(
        profile_targets.add_parser("video", help="camera and detector levels vs full rate")
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        raise SystemExit(_run_stage(args.stage))
    if args.command == "profile":
        profiles = {"gas": profile_gas, "audio": profile_audio, "video": profile_video}
        raise SystemExit(profiles[args.target].profile_command(args))
    settings = operator_settings(args.secrets)
    try:
        if args.command == "alerts":
            root = f"{settings.topic_root}/{args.gateway}"
            asyncio.run(tail_alerts(settings, root, args.count))
            code = 0
        elif args.command == "status":
            code = asyncio.run(show_status(settings, f"{settings.topic_root}/{args.gateway}"))
        elif args.command == "deploy":
            code = asyncio.run(deploy_command.run(settings, args))
        elif args.command == "qos":
            code = asyncio.run(qos_plan(settings, args.budget, args.solver, args.wait))
        else:
            code = asyncio.run(set_config(settings, args.stage, args.assignments, args.wait))
    except* ConnectionError as group:
        print(f"edgegw: {group.exceptions[0]}", file=sys.stderr)
        code = 3
    except* ValueError as group:
        print(f"edgegw: {group.exceptions[0]}", file=sys.stderr)
        code = 2
    except* KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
