"""What the hatchling build hook adds to each artifact: runs inside the build backend.

`hatch_build.py` asks `chosen_release` and `license_files` for the metadata, and `wheel_contents`
and `sdist_contents` for the files, tag and timestamps; the target and release come from
environment variables set by whoever runs the backend (`wheels`, `python -m build`, `pip`).
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, parse_tag
from packaging.version import Version

from . import atomic, bundled, fetch, pipeline, recipes, sbom, toolchain
from .commands import Log
from .digest import sha256_of
from .errors import WheelError
from .recipes import Recipes, Release, Target

ARCH_ENV = "KEXEC_BIN_ARCH"
VERSION_ENV = "KEXEC_BIN_VERSION"
# The sdist's folder holding the upstream tarball: a local mirror for building from the sdist.
BUNDLED_SOURCES = "upstream"
BINARY = "kexec_bin/bin/kexec"
BUILD_INFO = "kexec_bin/_build_info.py"
# The runtime's table of architecture names, generated from recipes/targets.toml (architectures_module).
ARCHITECTURES = "src/kexec_bin/_architectures.py"
# The ELF machines of the x86 targets: the CPUs memdisk (a real-mode PC program) runs on.
_X86_MACHINES = ("EM_X86_64", "EM_386")
PROJECT_LICENSE = "LICENSE"


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


def chosen_release(recipe_set: Recipes) -> Release:
    """The release named by $KEXEC_BIN_VERSION (a kexec-tools version), else the recipe's default."""
    return recipe_set.release(os.environ.get(VERSION_ENV) or None)


def release_of(recipe_set: Recipes, wheel_version: str) -> Release:
    """The release that the kexec-bin version `wheel_version` ships (2.0.32.0 → kexec-tools 2.0.32)."""
    for release in recipe_set.releases.values():
        if Version(release.wheel_version) == Version(wheel_version):
            return release
    offered = ", ".join(release.wheel_version for release in recipe_set.releases.values())
    raise WheelError(f"kexec-bin {wheel_version} matches no release in recipes/ (they give {offered})")


def chosen_target(recipe_set: Recipes, release: Release) -> Target:
    """The one target named by $KEXEC_BIN_ARCH (default: this machine's)."""
    spec = os.environ.get(ARCH_ENV) or "native"
    targets = recipe_set.select_targets(spec, release)
    if len(targets) != 1:
        raise WheelError(
            f"${ARCH_ENV}={spec!r} names {len(targets)} targets, and a wheel holds one binary: "
            f"use `inv wheel --arch {spec}`, which makes one wheel per target"
        )
    return targets[0]


def license_files(release: Release) -> list[str]:
    """The license files of a wheel shipping `release`: ours (MIT), kexec-tools' (GPL-2.0-only) and those
    of the files the wheels carry from Debian (`bundled`); the metadata is decided before the target is
    known (an sdist's PKG-INFO serves every target), so every wheel lists them all."""
    return [PROJECT_LICENSE, kexec_tools_license(release), *(item.license_file for item in bundled.load())]


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
        raise WheelError(
            f"recipes/targets.toml: {target.name}'s wheel-tags {list(target.wheel_tags)} do not form a tag"
        )
    return tag


def source_date_epoch(tarball: Path) -> int:
    """The newest modification time in `tarball`: the release's own date, the same on every build."""
    with tarfile.open(tarball) as archive:
        return int(max(member.mtime for member in archive))


def build_info_module(target: Target, release: Release, binary: Path) -> str:
    """The text of `kexec_bin/_build_info.py`: what the runtime needs to know about its binary,
    including the sha256 it checks before a load or exec (a truncated or swapped binary never runs)."""
    values = {
        "TARGET": target.name,
        "UNAME": target.uname,
        "ELF_MACHINE": target.elf_machine,
        "KEXEC_TOOLS_VERSION": release.version,
        "SHA256": sha256_of(binary),
        # The other files the wheel carries (kexec_bin/boot/memdisk), by their path in the package: checked before use.
        "CARRIED": {
            item.wheel_path[len("kexec_bin/") :]: item.member_sha256 for item in bundled.for_target(target.name)
        },
    }
    lines = [f"{name} = {value!r}" for name, value in values.items()]
    return (
        '"""The bundled kexec: written by the build (kexec_build.hook), not by hand."""\n\n' + "\n".join(lines) + "\n"
    )


def architectures_module(recipe_set: Recipes) -> str:
    """The text of `kexec_bin/_architectures.py`: the architecture names the runtime maps, from the targets.

    The runtime cannot read recipes/ (a wheel does not carry it), so it gets this table, written
    here and checked by every wheel build (`check_architectures`): one source, no copy to drift.
    """
    targets = recipe_set.targets.values()
    debian = {machine: target.debian_arch for target in targets for machine in target.uname}
    served = {machine: target.name for target in targets for machine in target.uname}
    x86 = sorted(machine for target in targets if target.elf_machine in _X86_MACHINES for machine in target.uname)

    def table(values: dict[str, str]) -> str:  # as ruff formats it: one entry a line
        return "{\n" + "".join(f'    "{key}": "{value}",\n' for key, value in values.items()) + "}"

    x86_names = ", ".join(f'"{machine}"' for machine in x86)

    return (
        '"""Architecture names, generated from recipes/targets.toml by kexec_build.hook.architectures_module.\n\n'
        "Do not edit: change recipes/targets.toml and run `python -m kexec_build.hook` (every wheel build\n"
        'checks that this file is what the recipes say).\n"""\n\n'
        f"# `uname -m` -> the kexec-bin target (wheel) that serves it.\nTARGETS = {table(served)}\n"
        f"# `uname -m` -> the Debian architecture of that target.\nDEBIAN = {table(debian)}\n"
        "# The `uname -m` values of x86 PCs (where memdisk, a real-mode program, can run).\n"
        f"X86 = ({x86_names})\n"
    )


def check_architectures(root: Path, recipe_set: Recipes) -> None:
    """Raise `WheelError` unless the runtime's table of architecture names is what recipes/targets.toml says."""
    path = root / ARCHITECTURES
    if not path.is_file() or path.read_text() != architectures_module(recipe_set):
        raise WheelError(
            f"{ARCHITECTURES} is not what recipes/targets.toml says: regenerate it with `python -m kexec_build.hook`"
        )


def write_architectures(root: Path) -> Path:
    """Write the runtime's table of architecture names from recipes/targets.toml; return its path."""
    return atomic.write_text(root / ARCHITECTURES, architectures_module(recipes.load()))


def bundled_sources(root: Path) -> Path | None:
    """The sdist's folder of upstream sources and Debian packages, when building from an sdist."""
    folder = root / BUNDLED_SOURCES
    return folder if folder.is_dir() else None


def upstream_mirrors(root: Path) -> list[str]:
    """Where to look for the upstream tarball: the sdist's bundled copy first, then $KEXEC_BIN_MIRRORS."""
    folder = bundled_sources(root)
    return ([str(folder)] if folder else []) + fetch.mirrors_from_env()


def wheel_contents(root: Path, wheel_version: str, *, log: Log = print) -> Contents:
    """Build (or reuse) the binary for the chosen target and stage what its wheel adds."""
    recipe_set = recipes.load()
    check_architectures(root, recipe_set)
    release = release_of(recipe_set, wheel_version)
    target = chosen_target(recipe_set, release)
    tools = toolchain.for_target(target, recipe_set)
    built = pipeline.build(release, tools, mirrors=upstream_mirrors(root), log=log)
    check_license(root, release, built.copying)
    epoch = source_date_epoch(fetch.fetch(release, mirrors=upstream_mirrors(root), log=log))
    staging = built.binary.parent / "wheel"
    binary = pipeline.checked_copy(built, release, tools, into=staging)
    info = atomic.write_text(staging / "_build_info.py", build_info_module(target, release, binary))
    carried = [(item, item.file(bundled_sources(root))) for item in bundled.for_target(target.name)]
    for item, _ in carried:
        item.check_license(root, bundled_sources(root))
    document = sbom.cyclonedx(
        wheel_version=wheel_version,
        info=built.read_info(),
        binary=binary,
        epoch=epoch,
        bundled=[item.component(path) for item, path in carried],
    )
    sbom_file = atomic.write_text(staging / sbom.FILE_NAME, sbom.dumps(document))
    files = {str(binary): BINARY, str(info): BUILD_INFO}
    files.update({str(path): item.wheel_path for item, path in carried})
    return Contents(
        files=files,
        epoch=epoch,
        tag=wheel_tag(target),
        sboms=(str(sbom_file),),
    )


def sdist_contents(root: Path, wheel_version: str, *, log: Log = print) -> Contents:
    """Fetch (or reuse) the verified upstream tarball and the Debian packages the wheels carry files from
    (recipes/bundled.toml: the archive keyring, memdisk) with their sources (GPL: the sources of what ships),
    that the sdist carries."""
    release = release_of(recipes.load(), wheel_version)
    tarball = fetch.fetch(release, mirrors=upstream_mirrors(root), log=log)
    packages = [
        path
        for item in bundled.load()
        for path in (item.deb(bundled_sources(root)), *item.sources(bundled_sources(root)))
    ]
    files = {str(path): f"{BUNDLED_SOURCES}/{path.name}" for path in [tarball, *packages]}
    return Contents(files=files, epoch=source_date_epoch(tarball))


if __name__ == "__main__":  # python -m kexec_build.hook: regenerate the runtime's table of architecture names
    from .paths import PROJECT_ROOT

    print(write_architectures(PROJECT_ROOT))
