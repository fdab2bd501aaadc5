"""`inv bench`: each figure is a ratio (or a time against its goal) measured in one run.

The sections (`build`, `wheel`, `release`, `runtime`, `netboot`, `iso`, and any the caller adds) each return
rows measured with the primitives of `measure`; this module runs them, prints the table and keeps the JSON.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from .. import atomic
from .build import cross_build_rows, native_build_rows
from .iso import iso_rows
from .measure import Row, format_table
from .netboot import netboot_rows, pool_rows
from .release import release_rows
from .runtime import runtime_rows
from .wheel import wheel_rows

__all__ = ["SECTIONS", "Row", "run"]

# Each section measures its rows in a scratch folder of its own.
Section = Callable[[Path], "list[Row]"]
SECTIONS: list[Section] = [
    native_build_rows,
    cross_build_rows,
    wheel_rows,
    release_rows,
    runtime_rows,
    netboot_rows,
    pool_rows,
    iso_rows,
]


def run(output: Path, extra: Sequence[Section] = ()) -> list[Row]:
    """Measure each section (ours, then `extra`), print the table and write the rows as JSON to `output`."""
    rows: list[Row] = []
    for section in [*SECTIONS, *extra]:
        work = Path(tempfile.mkdtemp(prefix="kexec-bin-bench-"))
        try:
            rows += section(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(format_table(rows))
    atomic.write_text(output, json.dumps([{**asdict(row), "ratio": row.ratio} for row in rows], indent=2) + "\n")
    return rows
