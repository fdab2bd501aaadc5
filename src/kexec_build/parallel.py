"""Build many targets at once: while one target's serial ./configure runs, another's make fills the cores.

Each build keeps its own lock, logs and key (see `pipeline`); this module only decides how many
run together and gathers their results into one table.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import columns, pipeline, toolchain
from .commands import Log
from .errors import BuildError
from .recipes import Recipes, Release, Target


@dataclass(frozen=True)
class Outcome:
    """How one target's build ended: its result, or the error that stopped it."""

    target: Target
    built: pipeline.Built | None
    error: BuildError | None
    runner: str  # what runs the binary for its checks: "native" or a qemu-user program


def build_all(
    release: Release,
    targets: Sequence[Target],
    *,
    recipe_set: Recipes,
    mirrors: Sequence[str] = (),
    workers: int | None = None,
    jobs: int | None = None,
    root: Path | None = None,
    log: Log = print,
) -> list[Outcome]:
    """Build `targets`, `workers` at a time (default: cores + 1) with `make -j<jobs>` each (default: cores).

    Every toolchain is looked up first, so missing ones are reported together before any build
    starts. One target's failure does not stop the others; each outcome says how it ended.
    """
    toolchains = toolchain.for_targets(targets, recipe_set)
    cores = os.cpu_count() or 1
    lock = threading.Lock()

    def locked_log(line: str) -> None:
        with lock:
            log(line)

    def one(target: Target) -> Outcome:
        runner = (toolchains[target].emulator() or ["native"])[0]
        try:
            built = pipeline.build(
                release, toolchains[target], mirrors=mirrors, jobs=jobs or cores, root=root, log=locked_log
            )
            return Outcome(target, built, None, runner)
        except BuildError as error:
            return Outcome(target, None, error, runner)

    # One build more than cores: configure spends much of its time waiting on short-lived
    # compiler processes, which leaves a core idle unless a third build is ready to use it.
    with ThreadPoolExecutor(max_workers=workers or cores + 1) as pool:
        return list(pool.map(one, targets))


def build_and_report(
    release: Release, targets: Sequence[Target], *, recipe_set: Recipes, mirrors: Sequence[str] = (), log: Log = print
) -> list[Outcome]:
    """Build `targets` side by side, log one table of how each ended, then raise if any failed."""
    outcomes = build_all(release, targets, recipe_set=recipe_set, mirrors=mirrors, log=log)
    log(table(outcomes))
    raise_for_failures(outcomes)
    return outcomes


def table(outcomes: Sequence[Outcome]) -> str:
    """One row per target: time, size, the zlib/lzma versions compiled in, and how it was run."""
    rows = [("target", "time", "size", "zlib/lzma", "runs")]
    for outcome in outcomes:
        if outcome.built is None:
            rows.append((outcome.target.name, "-", "-", "-", f"FAILED: {str(outcome.error).splitlines()[0]}"))
            continue
        info = outcome.built.read_info()
        libraries = info["libraries"]
        state = "" if outcome.built.rebuilt else " (no-op)"
        rows.append(
            (
                outcome.target.name,
                f"{outcome.built.seconds:.1f}s{state}",
                f"{outcome.built.binary.stat().st_size / 1024:.0f} KiB",
                f"{libraries['zlib']}/{libraries['xz']}",
                f"yes ({outcome.runner})",
            )
        )
    return columns.align(rows)


def raise_for_failures(outcomes: Sequence[Outcome]) -> None:
    """Raise one error naming every failed target (with the first failure's kind and exit code)."""
    failed = [(outcome.target, outcome.error) for outcome in outcomes if outcome.error is not None]
    if failed:
        kind = type(failed[0][1])
        raise kind(
            f"{len(failed)} of {len(outcomes)} builds failed:\n"
            + "\n".join(f"{target.name}: {error}" for target, error in failed)
        )
