"""`inv bench` rows for the wheels: each one's size, and the time to make them all from built binaries."""

from __future__ import annotations

import time
from pathlib import Path

from . import fetch, parallel, recipes, wheel
from .bench import Row

SIZE_GOAL = 600 * 1024
SECONDS_PER_WHEEL_GOAL = 1.0


def wheel_rows(work: Path) -> list[Row]:
    """Build every target's binary of the default release, then time making their wheels in `work`."""
    loaded = recipes.load()
    release = loaded.release()
    targets = loaded.select_targets("all", release)
    mirrors = fetch.mirrors_from_env()
    parallel.build_and_report(release, targets, recipes=loaded, mirrors=mirrors, log=lambda line: None)
    started = time.perf_counter()
    wheels = wheel.build_wheels(targets, release, outdir=work / "dist", env=wheel.mirrors_env(mirrors), log=lambda line: None)
    seconds = time.perf_counter() - started
    rows = [
        Row(f"wheel size: {target.name}", made.stat().st_size / 1024, "KiB", f"< {SIZE_GOAL // 1024} KiB",
            made.stat().st_size < SIZE_GOAL)
        for target, made in zip(targets, wheels)
    ]
    rows.append(Row(f"make all {len(wheels)} wheels from built binaries", seconds, "s",
                    f"< {SECONDS_PER_WHEEL_GOAL:g} s a wheel", seconds / len(wheels) < SECONDS_PER_WHEEL_GOAL))
    return rows
