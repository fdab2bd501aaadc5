"""Wheels and the sdist: what each holds, its tag and timestamps, and building them with hatchling.

The hatchling hooks in `hatch_build.py` ask `wheel_contents` and `sdist_contents` what to add;
`build_wheels` and `build_sdist` run that backend (through pypa/build, as `python -m build`
does) once per artifact, with the target and release chosen by environment variables, so that
`inv wheel`, `python -m build` and `pip install` of the sdist all take the same path.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from packaging.tags import Tag, parse_tag
from packaging.version import Version

from . import atomic, fetch, keyring, parallel, pipeline, recipes, sbom, unpack
from .errors import WheelError
from .paths import BUILD_ENV, PROJECT_ROOT
from .recipes import Recipes, Release, Target

ARCH_ENV = "KEXEC_BIN_ARCH"
VERSION_ENV = "KEXEC_BIN_VERSION"
# The sdist's folder holding the upstream tarball: a local mirror for building from the sdist.
BUNDLED_SOURCES = "upstream"
BINARY = "kexec_bin/bin/kexec"
BUILD_INFO = "kexec_bin/_build_info.py"
SUMS = "SHA256SUMS"
PROJECT_LICENSE = "LICENSE"

Log = Callable[[str], None]


@dataclass(frozen=True)
class Contents:
    """What the build hook adds to one artifact, beyond the project's own files."""

    files: dict[str, str]
    """Source path → path inside the artifact."""
    epoch: int
    """SOURCE_DATE_EPOCH: the newest file time in the release's upstream tarball."""
    tag: str | None = None
    """The wheel tag (the sdist has none)."""
    sboms: tuple[str, ...] = ()
    """SBOM files for `.dist-info/sboms/`."""


def chosen_release(loaded: Recipes) -> Release:
    """The release named by $KEXEC_BIN_VERSION (a kexec-tools version), else the recipe's default."""
    return loaded.release(os.environ.get(VERSION_ENV) or None)


def release_of(loaded: Recipes, wheel_version: str) -> Release:
    """The release that the kexec-bin version `wheel_version` ships (2.0.32.0 → kexec-tools 2.0.32)."""
    for release in loaded.releases.values():
        if Version(release.wheel_version) == Version(wheel_version):
            return release
    offered = ", ".join(release.wheel_version for release in loaded.releases.values())
    raise WheelError(f"kexec-bin {wheel_version} matches no release in recipes/ (they give {offered})")


def chosen_target(loaded: Recipes, release: Release) -> Target:
    """The one target named by $KEXEC_BIN_ARCH (default: this machine's)."""
    spec = os.environ.get(ARCH_ENV) or "native"
    targets = loaded.select_targets(spec, release)
    if len(targets) != 1:
        raise WheelError(
            f"${ARCH_ENV}={spec!r} names {len(targets)} targets, and a wheel holds one binary: "
            f"use `inv wheel --arch {spec}`, which makes one wheel per target"
        )
    return targets[0]


def license_files(release: Release) -> list[str]:
    """The license files of a wheel shipping `release`: ours (MIT) and kexec-tools' (GPL-2.0-only)."""
    return [PROJECT_LICENSE, kexec_tools_license(release)]


def kexec_tools_license(release: Release) -> str:
    """Where the project keeps the reviewed copy of `release`'s COPYING (a path in the project)."""
    return f"licenses/kexec-tools-{release.version}/COPYING"


def check_license(root: Path, release: Release, copying: Path) -> None:
    """Raise `WheelError` unless the reviewed COPYING is byte-identical to the one in the source.

    hatchling reads license files before a build hook runs, so the wheel's copy must be in the
    project already; this check keeps it from drifting from what upstream ships.
    """
    recorded = root / kexec_tools_license(release)
    fix = f"review it, then: mkdir -p {recorded.parent} && cp {copying} {recorded}"
    if not recorded.is_file():
        raise WheelError(f"{recorded.relative_to(root)} is missing for kexec-tools {release.version}: {fix}")
    if recorded.read_bytes() != copying.read_bytes():
        raise WheelError(
            f"{recorded.relative_to(root)} differs from the COPYING in kexec-tools {release.version}'s "
            f"source ({copying}): upstream changed its license text; {fix}"
        )


def wheel_tag(target: Target) -> str:
    """The wheel tag of `target`: any Python 3, no ABI, and every platform tag of the target."""
    tag = f"py3-none-{target.platform_tag}"
    if parse_tag(tag) != {Tag("py3", "none", platform) for platform in target.wheel_tags}:
        raise WheelError(f"recipes/targets.toml: {target.name}'s wheel-tags {list(target.wheel_tags)} do not form a tag")
    return tag


def source_date_epoch(tarball: Path) -> int:
    """The newest modification time in `tarball`: the release's own date, the same on every build."""
    with tarfile.open(tarball) as archive:
        return max(member.mtime for member in archive)


def build_info_module(target: Target, release: Release) -> str:
    """The text of `kexec_bin/_build_info.py`: what the runtime needs to know about its binary."""
    values = {
        "TARGET": target.name,
        "UNAME": target.uname,
        "ELF_MACHINE": target.elf_machine,
        "KEXEC_TOOLS_VERSION": release.version,
    }
    lines = [f"{name} = {value!r}" for name, value in values.items()]
    return '"""The bundled kexec: written by the build (kexec_build.wheel), not by hand."""\n\n' + "\n".join(lines) + "\n"


def mirrors(root: Path) -> list[str]:
    """Where to look for the upstream tarball: the sdist's bundled copy first, then $KEXEC_BIN_MIRRORS."""
    bundled = root / BUNDLED_SOURCES
    return ([str(bundled)] if bundled.is_dir() else []) + fetch.mirrors_from_env()


def wheel_contents(root: Path, wheel_version: str, *, log: Log = print) -> Contents:
    """Build (or reuse) the binary for the chosen target and stage what its wheel adds."""
    loaded = recipes.load()
    release = release_of(loaded, wheel_version)
    target = chosen_target(loaded, release)
    built = pipeline.build(release, target, recipes=loaded, mirrors=mirrors(root), log=log)
    check_license(root, release, built.copying)
    epoch = source_date_epoch(built.source)
    staging = built.binary.parent / "wheel"
    info = atomic.write_text(staging / "_build_info.py", build_info_module(target, release))
    debian_keyring = keyring.keyring(root / BUNDLED_SOURCES)
    document = sbom.cyclonedx(wheel_version=wheel_version, info=built.read_info(), binary=built.binary, epoch=epoch,
                              keyring=debian_keyring)
    sbom_file = atomic.write_text(staging / sbom.FILE_NAME, sbom.dumps(document))
    return Contents(
        files={str(built.binary): BINARY, str(info): BUILD_INFO, str(debian_keyring.path): keyring.WHEEL_PATH},
        epoch=epoch,
        tag=wheel_tag(target),
        sboms=(str(sbom_file),),
    )


def sdist_contents(root: Path, wheel_version: str, *, log: Log = print) -> Contents:
    """Fetch (or reuse) the verified upstream tarball and the Debian keyring package that the sdist carries."""
    release = release_of(recipes.load(), wheel_version)
    tarball = fetch.fetch(release, mirrors=mirrors(root), log=log)
    debian_keyring = keyring.keyring(root / BUNDLED_SOURCES)
    return Contents(files={str(tarball): f"{BUNDLED_SOURCES}/{release.source}",
                           str(debian_keyring.deb): f"{BUNDLED_SOURCES}/{keyring.DEB}"},
                    epoch=source_date_epoch(tarball))


def make_wheels(targets: Sequence[Target], release: Release, *, loaded: Recipes, mirrors: Sequence[str],
                dist: Path, check_repro: bool = False, log: Log = print) -> list[Path]:
    """`inv wheel`: build the binaries (side by side), then one wheel per target into `dist`, then
    SHA256SUMS; with `check_repro`, prove the wheels reproducible first."""
    parallel.build_and_report(release, targets, recipes=loaded, mirrors=mirrors, log=log)
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


def build_wheels(targets: Sequence[Target], release: Release, *, outdir: Path, root: Path = PROJECT_ROOT,
                 env: Mapping[str, str] | None = None, log: Log = print) -> list[Path]:
    """Make one wheel per target in `outdir` from the project (or unpacked sdist) at `root`."""
    wheels = []
    for target in targets:
        wheel = _run_backend("wheel", root, outdir, {**(env or {}), ARCH_ENV: target.name, VERSION_ENV: release.version})
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
    return atomic.write_text(dist / SUMS, "".join(f"{sbom.sha256_of(path)}  {path.name}\n" for path in artifacts))


def check_reproducible(wheels: Sequence[Path], targets: Sequence[Target], release: Release, *,
                       mirrors: Sequence[str] = (), log: Log = print) -> None:
    """Make `wheels` again from the sdist, unpacked in a fresh folder and compiled in a fresh build
    tree; raise `WheelError` naming every difference."""
    with tempfile.TemporaryDirectory(prefix="kexec-bin-repro-") as scratch:
        folder = Path(scratch)
        sdist = build_sdist(release, outdir=folder, env=mirrors_env(mirrors), log=log)
        root = unpack.unpack(sdist, folder / "sdist")
        again = build_wheels(targets, release, outdir=folder / "dist", root=root,
                             env={BUILD_ENV: str(folder / "build")}, log=log)
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
                found.append(f"{name}: time or mode differs ({a.date_time} {a.external_attr:o} vs {b.date_time} {b.external_attr:o})")
        if not found and list(left) != list(right):
            found.append("members in another order")
    return sorted(found) or ["the archives differ outside their members (zip headers)"]


def mirrors_env(mirrors: Sequence[str]) -> dict[str, str]:
    """The environment that hands `mirrors` to the build hook, which runs in another process."""
    return {fetch.MIRRORS_ENV: " ".join(mirrors)}


def _run_backend(distribution: str, root: Path, outdir: Path, env: Mapping[str, str]) -> Path:
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
            settings = " ".join(f"{key}={value}" for key, value in sorted(env.items()))
            raise WheelError(f"the build backend failed to make the {distribution} ({settings}); its output is above: {error}") from None
        final = outdir / built.name
        os.replace(built, final)
    return final

