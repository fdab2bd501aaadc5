"""`inv bench` rows for the wheels: each one's size, and the time to make them all from built binaries."""

from __future__ import annotations

import time
from pathlib import Path

from .. import fetch, parallel, recipes, wheels
from ..commands import quiet
from .measure import Row

SIZE_GOAL = 600 * 1024
SECONDS_PER_WHEEL_GOAL = 1.0


def wheel_rows(work: Path) -> list[Row]:
    """Build every target's binary of the default release, then time making their wheels in `work`."""
    recipe_set = recipes.load()
    release = recipe_set.release()
    targets = recipe_set.select_targets("all", release)
    mirrors = fetch.mirrors_from_env()
    parallel.build_and_report(release, targets, recipe_set=recipe_set, mirrors=mirrors, log=quiet)
    started = time.perf_counter()
    made = wheels.build_wheels(targets, release, outdir=work / "dist", env=wheels.mirrors_env(mirrors), log=quiet)
    seconds = time.perf_counter() - started
    rows = [
        Row(
            f"wheel size: {target.name}",
            wheel.stat().st_size / 1024,
            "KiB",
            f"< {SIZE_GOAL // 1024} KiB",
            wheel.stat().st_size < SIZE_GOAL,
        )
        for target, wheel in zip(targets, made)
    ]
    rows.append(
        Row(
            f"make all {len(made)} wheels from built binaries",
            seconds,
            "s",
            f"< {SECONDS_PER_WHEEL_GOAL:g} s a wheel",
            seconds / len(made) < SECONDS_PER_WHEEL_GOAL,
        )
    )
    return rows
