"""`inv bench` rows for the builds: cold builds against a bare configure && make, and no-op rebuilds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from .. import fetch, recipes, toolchain
from ..paths import BUILD_ENV, PROJECT_ROOT
from .measure import Row, timed


def bare_build_seconds(
    tarball: Path,
    workdir: Path,
    host: str | None = None,
    *,
    configure_args: Sequence[str] = (),
    env: dict | None = None,
) -> float:
    """Time a plain `tar xf && ./configure && make` of `tarball`, as a user would type it."""
    started = time.perf_counter()
    subprocess.run(["tar", "xf", str(tarball)], cwd=workdir, check=True)
    source = next(workdir.glob("kexec-tools-*"))
    configure = ["./configure"] + ([f"--host={host}"] if host else []) + list(configure_args)
    for command in (configure, ["make"]):
        subprocess.run(command, cwd=source, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def cold_and_noop_build(work: Path, *options: str) -> tuple[float, float]:
    """Time `inv build <options>` in a fresh build tree under `work`, then again (a no-op)."""
    env = {**os.environ, BUILD_ENV: str(work / "build")}
    invoke = [sys.executable, "-m", "invoke", "build", *options]
    return timed(invoke, cwd=PROJECT_ROOT, env=env), timed(invoke, cwd=PROJECT_ROOT, env=env)


def native_build_rows(work: Path) -> list[Row]:
    """A cold native build (source cached) against a bare configure && make; then the no-op rebuild."""
    recipe_set = recipes.load()
    release = recipe_set.release()
    tarball = fetch.fetch(release, mirrors=fetch.mirrors_from_env())
    bare_dir = work / "bare"
    bare_dir.mkdir()
    bare = bare_build_seconds(tarball, bare_dir)
    cold, noop = cold_and_noop_build(work)
    return [
        Row("cold native build vs bare ./configure && make", cold, "s", "ratio <= 1.25", cold / bare <= 1.25, bare),
        Row("no-op native rebuild (inv build)", noop, "s", "< 1 s", noop < 1.0),
    ]


def cross_build_rows(work: Path) -> list[Row]:
    """All targets built cold (sources cached, toolchains installed) against the same bare
    configure && make as the native row, of each target one after the other; then the no-op
    `--arch all` rebuild.
    """
    recipe_set = recipes.load()
    release = recipe_set.release()
    tarball = fetch.fetch(release, mirrors=fetch.mirrors_from_env())
    targets = recipe_set.select_targets("all", release)
    bare = 0.0
    for target, tools in toolchain.for_targets(targets, recipe_set).items():
        extra = tools.configure_env()
        env = {**os.environ, **extra, "CFLAGS": "-O2", "LDFLAGS": f"-static {extra.get('LDFLAGS', '')}"}
        folder = work / "bare" / target.name
        folder.mkdir(parents=True)
        bare += bare_build_seconds(tarball, folder, target.triplet, configure_args=release.configure_flags, env=env)
    cold, noop = cold_and_noop_build(work, "--arch", "all")
    return [
        Row(
            f"cold --arch all ({len(targets)} targets) vs bare builds one by one",
            cold,
            "s",
            "ratio <= 0.8",
            cold / bare <= 0.8,
            bare,
        ),
        Row("no-op --arch all rebuild (inv build --arch all)", noop, "s", "< 1 s", noop < 1.0),
    ]
