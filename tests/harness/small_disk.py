"""A small disk of a test's own (a tmpfs; the tests run as root), and a hog
that takes what is left of it: a full disk without filling the machine's."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount's syntax: "2m", "2097152") mounted on `where`."""
    where.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill_disk(where: Path) -> Path:
    """Another writer takes what is left of the disk; the file it wrote."""
    hog = where / "hog"
    with hog.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"h" * 4096)
    return hog
