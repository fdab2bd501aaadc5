"""Plain-text tables for the terminal: each column padded to its widest cell."""

from __future__ import annotations

from typing import Sequence


def align(rows: Sequence[Sequence[str]]) -> str:
    """`rows` (the header first) as lines of left-aligned columns, two spaces apart."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
