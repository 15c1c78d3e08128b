"""`edgegw profile <target>` and the one `main` of the `python -m profiling.*` modules:
each target brings its own arguments and command, imported only when it runs."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel


def profile_main(
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    command: Callable[[argparse.Namespace], int],
    argv: list[str] | None = None,
    prog: str | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0] if doc else None)
    add_arguments(parser)
    raise SystemExit(command(parser.parse_args(argv)))


def write_table(out: Path, table: BaseModel, summary: Iterable[str], took: str = "") -> int:
    """The end of every `profile_command`: `table` as JSON in `out`, `summary`
    printed a line each, then where it went (and `took`); exit status 0."""
    out.write_text(table.model_dump_json(indent=2) + "\n")
    for line in summary:
        print(line)
    print(f"wrote {out}{took}")
    return 0


def profile_target(target: str, argv: list[str]) -> None:
    """Parse `argv` with the arguments of `profiling.<target>` and run it; exits with its status."""
    module = importlib.import_module(f"{__package__}.{target}")
    profile_main(
        module.__doc__,
        module.add_arguments,
        module.profile_command,
        argv,
        f"edgegw profile {target}",
    )
