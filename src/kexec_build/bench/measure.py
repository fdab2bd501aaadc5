"""The measuring primitives of `inv bench`: a row, a timed run, the table.

A row compares our command with a baseline the benchmark runs itself, on the same machine in the
same minute, so the ratio holds where absolute times do not.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .. import columns


@dataclass(frozen=True)
class Row:
    """One figure: ours against a baseline (ratio) or against an absolute goal."""

    name: str
    ours: float
    unit: str
    goal: str
    met: bool
    baseline: float | None = None

    @property
    def ratio(self) -> float | None:
        return self.ours / self.baseline if self.baseline else None


def timed(command: list[str], *, cwd: Path, env: dict | None = None, check: bool = True) -> float:
    """Wall-clock seconds of one run of `command`; raise if it fails (unless `check` is false)."""
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    lines = [("figure", "ours", "baseline", "ratio", "goal", "met")]
    for row in rows:
        lines.append((
            row.name,
            f"{row.ours:.3f} {row.unit}",
            f"{row.baseline:.3f} {row.unit}" if row.baseline else "-",
            f"{row.ratio:.2f}" if row.ratio else "-",
            row.goal,
            "yes" if row.met else "NO",
        ))
    return columns.align(lines)
