"""Wheels and the sdist made from outside the build backend: `inv wheel`, `inv sdist`, reproducibility.

Each artifact is made by running the project's backend (hatchling, through pypa/build, as
`python -m build` does) with the target and release chosen by environment variables, so that
`inv wheel`, `python -m build` and `pip install` of the sdist all take the same path; inside the
backend, `hook` decides what each artifact holds.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Literal, Mapping, Sequence

from . import atomic, fetch, parallel, unpack
from .commands import Log
from .digest import sha256_of
from .errors import WheelError
from .hook import ARCH_ENV, BINARY, VERSION_ENV
from .paths import BUILD_ENV, PROJECT_ROOT
from .recipes import Recipes, Release, Target

SUMS = "SHA256SUMS"


def make_wheels(
    targets: Sequence[Target],
    release: Release,
    *,
    recipe_set: Recipes,
    mirrors: Sequence[str],
    dist: Path,
    check_repro: bool = False,
    log: Log = print,
) -> list[Path]:
    """`inv wheel`: build the binaries (side by side), then one wheel per target into `dist`, then
    SHA256SUMS; with `check_repro`, prove the wheels reproducible first."""
    parallel.build_and_report(release, targets, recipe_set=recipe_set, mirrors=mirrors, log=log)
    wheels = build_wheels(targets, release, outdir=dist, env=mirrors_env(mirrors), log=log)
    if check_repro:
        check_reproducible(wheels, targets, release, mirrors=mirrors, log=log)
    log(f"wheel: {write_sums(dist)}")
    return wheels


def make_sdist(release: Release, *, mirrors: Sequence[str], dist: Path, log: Log = print) -> Path:
    """`inv sdist`: the sdist of `release` into `dist`, then SHA256SUMS."""
    sdist = build_sdist(release, outdir=dist, env=mirrors_env(mirrors), log=log)
    log(f"sdist: {write_sums(dist)}")
    return sdist


def build_wheels(
    targets: Sequence[Target],
    release: Release,
    *,
    outdir: Path,
    root: Path = PROJECT_ROOT,
    env: Mapping[str, str] | None = None,
    log: Log = print,
) -> list[Path]:
    """Make one wheel per target in `outdir` from the project (or unpacked sdist) at `root`."""
    wheels = []
    for target in targets:
        wheel = _run_backend(
            "wheel", root, outdir, {**(env or {}), ARCH_ENV: target.name, VERSION_ENV: release.version}
        )
        log(f"wheel: {target.name}: {wheel} ({wheel.stat().st_size // 1024} KiB)")
        wheels.append(wheel)
    return wheels


def build_sdist(release: Release, *, outdir: Path, env: Mapping[str, str] | None = None, log: Log = print) -> Path:
    """Make the sdist of `release` in `outdir`: the project's sources and the upstream tarball."""
    sdist = _run_backend("sdist", PROJECT_ROOT, outdir, {**(env or {}), VERSION_ENV: release.version})
    log(f"sdist: {sdist} ({sdist.stat().st_size // 1024} KiB)")
    return sdist


def write_sums(dist: Path) -> Path:
    """Write `dist/SHA256SUMS` for every wheel and sdist in `dist` (`sha256sum -c` reads it)."""
    artifacts = sorted([*dist.glob("*.whl"), *dist.glob("*.tar.gz")])
    return atomic.write_text(dist / SUMS, "".join(f"{sha256_of(path)}  {path.name}\n" for path in artifacts))


def check_reproducible(
    wheels: Sequence[Path],
    targets: Sequence[Target],
    release: Release,
    *,
    mirrors: Sequence[str] = (),
    log: Log = print,
) -> None:
    """Make `wheels` again from the sdist, unpacked in a fresh folder and compiled in a fresh build
    tree; raise `WheelError` naming every difference."""
    with tempfile.TemporaryDirectory(prefix="kexec-bin-repro-") as scratch:
        folder = Path(scratch)
        sdist = build_sdist(release, outdir=folder, env=mirrors_env(mirrors), log=log)
        root = unpack.unpack(sdist, folder / "sdist")
        again = build_wheels(
            targets, release, outdir=folder / "dist", root=root, env={BUILD_ENV: str(folder / "build")}, log=log
        )
        problems = [
            f"{first.name}: {difference}"
            for first, second in zip(wheels, again)
            for difference in differences(first, second)
        ]
    if problems:
        raise WheelError("the wheels are not reproducible:\n" + "\n".join(f"  - {problem}" for problem in problems))
    log(f"wheel: {len(wheels)} wheel(s) rebuilt byte-identical in another folder")


def differences(first: Path, second: Path) -> list[str]:
    """What differs between two wheels: file names, then each member's bytes, time or mode."""
    if first.name != second.name:
        return [f"named {second.name} when built again"]
    if first.read_bytes() == second.read_bytes():
        return []
    with zipfile.ZipFile(first) as one, zipfile.ZipFile(second) as other:
        left = {info.filename: info for info in one.infolist()}
        right = {info.filename: info for info in other.infolist()}
        found = [f"{name}: only in the first build" for name in left.keys() - right.keys()]
        found += [f"{name}: only in the second build" for name in right.keys() - left.keys()]
        for name in left.keys() & right.keys():
            a, b = left[name], right[name]
            if one.read(name) != other.read(name):
                found.append(f"{name}: content differs" + (" (build paths in the binary?)" if name == BINARY else ""))
            if (a.date_time, a.external_attr) != (b.date_time, b.external_attr):
                first_stamp, second_stamp = f"{a.date_time} {a.external_attr:o}", f"{b.date_time} {b.external_attr:o}"
                found.append(f"{name}: time or mode differs ({first_stamp} vs {second_stamp})")
        if not found and list(left) != list(right):
            found.append("members in another order")
    return sorted(found) or ["the archives differ outside their members (zip headers)"]


def mirrors_env(mirrors: Sequence[str]) -> dict[str, str]:
    """The environment that hands `mirrors` to the build hook, which runs in another process."""
    return {fetch.MIRRORS_ENV: " ".join(mirrors)}


def _run_backend(distribution: Literal["wheel", "sdist"], root: Path, outdir: Path, env: Mapping[str, str]) -> Path:
    """Run the project's build backend for one artifact, with `env` added; move it into `outdir`."""
    import pyproject_hooks
    from build import BuildBackendException, ProjectBuilder

    def runner(cmd, cwd=None, extra_environ=None):
        pyproject_hooks.default_subprocess_runner(cmd, cwd, {**(extra_environ or {}), **env})

    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".building-") as scratch:
        try:
            built = Path(ProjectBuilder(root, runner=runner).build(distribution, scratch))
        except BuildBackendException as error:
            settings = fetch.mask_credentials(" ".join(f"{key}={value}" for key, value in sorted(env.items())))
            raise WheelError(
                f"the build backend failed to make the {distribution} ({settings}); its output is above: {error}"
            ) from None
        final = outdir / built.name
        os.replace(built, final)
    return final
