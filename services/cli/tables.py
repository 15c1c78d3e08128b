"""Plain aligned columns for the CLI's tables (no dependency: the output is
the same in a terminal, a pipe and a test)."""

from __future__ import annotations

from collections.abc import Sequence

GAP = "  "


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], right: set[int]
) -> list[str]:
    """`headers` and `rows` as lines of aligned columns; the columns whose
    index is in `right` (numbers) are right-aligned."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def line(values: Sequence[str]) -> str:
        padded = [
            value.rjust(widths[index]) if index in right else value.ljust(widths[index])
            for index, value in enumerate(values)
        ]
        return GAP.join(padded).rstrip()

    return [line(list(headers)), *(line(row) for row in cells)]
