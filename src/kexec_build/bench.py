"""`inv bench`: each figure is a ratio (or a time against its goal) measured in one run.

A row compares our command with a baseline the benchmark runs itself, on the same machine in the
same minute, so the ratio holds where absolute times do not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from . import atomic, columns, fetch, recipes, toolchain
from .paths import BUILD_ENV, PROJECT_ROOT


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


def timed(command: list[str], *, cwd: Path, env: dict | None = None) -> float:
    """Wall-clock seconds of one run of `command`; raise if it fails."""
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def bare_build_seconds(tarball: Path, workdir: Path, host: str | None = None, *,
                       configure_args: Sequence[str] = (), env: dict | None = None) -> float:
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
    loaded = recipes.load()
    release = loaded.release()
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
    loaded = recipes.load()
    release = loaded.release()
    tarball = fetch.fetch(release, mirrors=fetch.mirrors_from_env())
    targets = loaded.select_targets("all", release)
    bare = 0.0
    for target, tools in toolchain.for_targets(targets, loaded).items():
        extra = tools.configure_env()
        env = {**os.environ, **extra, "CFLAGS": "-O2", "LDFLAGS": f"-static {extra.get('LDFLAGS', '')}"}
        folder = work / "bare" / target.name
        folder.mkdir(parents=True)
        bare += bare_build_seconds(tarball, folder, target.triplet, configure_args=release.configure_flags, env=env)
    cold, noop = cold_and_noop_build(work, "--arch", "all")
    return [
        Row(f"cold --arch all ({len(targets)} targets) vs bare builds one by one", cold, "s", "ratio <= 0.8",
            cold / bare <= 0.8, bare),
        Row("no-op --arch all rebuild (inv build --arch all)", noop, "s", "< 1 s", noop < 1.0),
    ]


# Each section measures its rows in a scratch folder of its own.
def sections() -> list[Callable[[Path], list[Row]]]:
    """The toolkit's own sections: builds, wheels, the release and the runtime."""
    # Imported here: those modules import Row and timed from this one.
    from .bench_release import release_rows
    from .bench_runtime import runtime_rows
    from .bench_wheel import wheel_rows

    return [native_build_rows, cross_build_rows, wheel_rows, release_rows, runtime_rows]


def run(output: Path, extra: Sequence[Callable[[Path], list[Row]]] = ()) -> list[Row]:
    """Measure each section (ours, then `extra`), print the table and write the rows as JSON to `output`."""
    rows: list[Row] = []
    for section in [*sections(), *extra]:
        work = Path(tempfile.mkdtemp(prefix="kexec-bin-bench-"))
        try:
            rows += section(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(format_table(rows))
    atomic.write_text(output, json.dumps([{**asdict(row), "ratio": row.ratio} for row in rows], indent=2) + "\n")
    return rows


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
