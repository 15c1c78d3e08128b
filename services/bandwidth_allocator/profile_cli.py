"""The one `main` of the `python -m services.bandwidth_allocator.profile_*`
modules: each brings its own arguments and command (the same pair
`edgegw profile <kind>` uses), this parses and exits with the command's status."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def profile_main(
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    command: Callable[[argparse.Namespace], int],
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    add_arguments(parser)
    raise SystemExit(command(parser.parse_args(argv)))
