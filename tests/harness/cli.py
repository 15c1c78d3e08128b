"""The `edgegw` command as the tests run it: a subprocess of this Python."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def run_edgegw(
    env: Mapping[str, str], *args: str, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """`edgegw <args>` with `env` over this environment; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
