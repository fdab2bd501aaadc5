"""`inv bench` row for the release: `inv release` against the commands it replaces, from a warm build tree."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import fetch, parallel, recipes
from ..commands import quiet
from ..paths import DIST_ENV, PROJECT_ROOT
from .measure import Row, timed

RATIO_GOAL = 1.2
ROUNDS = 3


def release_rows(work: Path) -> list[Row]:
    """`inv release` against `inv wheel --arch all` plus `inv sdist`, each into an empty dist/ of its own."""
    recipe_set = recipes.load()
    release = recipe_set.release()
    # Warm: every binary built first, so both sides only package (and the release also checks).
    parallel.build_and_report(
        release,
        recipe_set.select_targets("all", release),
        recipe_set=recipe_set,
        mirrors=fetch.mirrors_from_env(),
        log=quiet,
    )
    invoke = [sys.executable, "-m", "invoke"]

    def seconds(name: str, *commands: list[str]) -> float:
        env = {**os.environ, DIST_ENV: str(work / name)}
        return sum(timed(invoke + command, cwd=PROJECT_ROOT, env=env) for command in commands)

    seconds("warm-up", ["release"])  # the static tarballs, compressed once, are kept in the build tree
    # A few seconds each, on a shared machine: the best of alternating rounds, so a burst of
    # other work during one run does not decide the ratio.
    rounds = [
        (
            seconds(f"wheel-sdist-{index}", ["wheel", "--arch", "all"], ["sdist"]),
            seconds(f"release-{index}", ["release"]),
        )
        for index in range(ROUNDS)
    ]
    baseline, ours = min(pair[0] for pair in rounds), min(pair[1] for pair in rounds)
    return [
        Row(
            f"inv release vs inv wheel --arch all + inv sdist (warm build tree, best of {ROUNDS})",
            ours,
            "s",
            f"ratio <= {RATIO_GOAL}",
            ours / baseline <= RATIO_GOAL,
            baseline,
        )
    ]
