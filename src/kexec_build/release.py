"""`inv release`: dist/ becomes exactly one release, checked, with a manifest saying where each file goes.

The set: one wheel per target, the sdist, a static tarball per target for people who want the
binary without Python (initramfs builders, rescue images), `release-manifest.json` and one
`SHA256SUMS` over all of them. A wheel goes to PyPI only when PyPI accepts every platform tag in
its name (`recipes/pypi-platform-tags.toml`); the others go to the GitHub release and a
--find-links page, and pip on such a host falls back to the sdist. `dist/pypi/` holds exactly the
PyPI-bound files, for an uploader that takes a folder.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from packaging.utils import parse_wheel_filename

from . import atomic, fetch, hook, parallel, recipes, sbom, wheels
from .commands import Log
from .digest import sha256_of
from .errors import ReleaseError
from .paths import build_dir
from .recipes import Recipes, Release, Target

PYPI_RULE_FILE = "pypi-platform-tags.toml"
MANIFEST = "release-manifest.json"
PYPI_FOLDER = "pypi"
# The files a previous `inv release` or `inv wheel` may have left in dist/ for another version.
_ARTIFACTS = ("kexec_bin-*.whl", "kexec_bin-*.tar.gz", "kexec-tools-*-static.tar.xz")
_PERENNIAL = re.compile(r"(?P<libc>many|musl)linux_(\d+)_(\d+)_(?P<arch>.*)")


@dataclass(frozen=True)
class PlatformRule:
    """PyPI's rule for Linux platform tags (warehouse's `_valid_platform_tag`), and where it was read."""

    source: str
    static: frozenset[str]
    manylinux_arches: frozenset[str]
    musllinux_arches: frozenset[str]

    def accepts(self, platform: str) -> bool:
        if platform in self.static:
            return True
        match = _PERENNIAL.match(platform)
        if not match:
            return False
        arches = self.musllinux_arches if match.group("libc") == "musl" else self.manylinux_arches
        return match.group("arch") in arches

    def refused_tags(self, wheel_name: str) -> list[str]:
        """The platform tags in the file name `wheel_name` that PyPI refuses (one refused tag refuses the upload)."""
        _, _, _, tags = parse_wheel_filename(wheel_name)
        return sorted({tag.platform for tag in tags if not self.accepts(tag.platform)})


_PYPI_RULE_KEYS = (
    recipes._Key(
        "source", "the https URL the rule was read from", lambda v: isinstance(v, str) and v.startswith("https://")
    ),
    recipes._Key("static", "a list of platform tags", recipes._is_str_list),
    recipes._Key("manylinux-arches", "a list of CPU names", recipes._is_str_list),
    recipes._Key("musllinux-arches", "a list of CPU names", recipes._is_str_list),
)


def pypi_rule(recipes_dir: Path = recipes.RECIPES_DIR) -> PlatformRule:
    """Read `recipes/pypi-platform-tags.toml`; raise `RecipeError` listing every problem."""
    file = recipes._File(recipes_dir / PYPI_RULE_FILE)
    values = file.read(file.data, "", _PYPI_RULE_KEYS)
    file.fail_if_problems()
    return PlatformRule(
        source=values["source"],
        static=frozenset(values["static"]),
        manylinux_arches=frozenset(values["manylinux-arches"]),
        musllinux_arches=frozenset(values["musllinux-arches"]),
    )


@dataclass(frozen=True)
class Entry:
    """One file of the release: what it is, its sha256, and whether it goes to PyPI (and why not)."""

    file: str
    sha256: str
    kind: str  # "wheel", "sdist" or "static"
    target: str | None
    pypi: bool
    why: str


def static_tarball_name(release: Release, target: Target) -> str:
    return f"kexec-tools-{release.version}-{target.name}-static.tar.xz"


def make_release(
    targets: Sequence[Target],
    release: Release,
    *,
    recipe_set: Recipes,
    mirrors: Sequence[str],
    dist: Path,
    log: Log = print,
) -> list[Entry]:
    """`inv release`: wheels, sdist and static tarballs of `release` into `dist` (and nothing else),
    checked by twine and check-wheel-contents; then the manifest, `dist/pypi/` and SHA256SUMS."""
    rule = pypi_rule()
    parallel.build_and_report(release, targets, recipe_set=recipe_set, mirrors=mirrors, log=log)
    epoch = hook.source_date_epoch(fetch.fetch(release, mirrors=mirrors, log=log))
    env = wheels.mirrors_env(mirrors)

    def wheel_and_tarball(target: Target) -> tuple[Path, Path]:
        (made,) = wheels.build_wheels([target], release, outdir=dist, env=env, log=log)
        return made, static_tarball(made, dist / static_tarball_name(release, target), epoch)

    # Each build backend run is one process on one core, and lzma lets go of the GIL: the wheels,
    # their tarballs and the sdist are made side by side, one per core, then checked side by side.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        sdist_job = pool.submit(wheels.build_sdist, release, outdir=dist, env=env, log=log)
        made_wheels, tarballs = zip(*pool.map(wheel_and_tarball, targets))
        sdist = sdist_job.result()
        checks = [
            pool.submit(run_check, dist, "check_wheel_contents", *made_wheels),
            pool.submit(run_check, dist, "twine", "check", "--strict", *made_wheels, sdist),
        ]
        for job in checks:
            job.result()
    entries = [_wheel_entry(made, target, rule) for target, made in zip(targets, made_wheels)]
    entries.append(
        Entry(sdist.name, sha256_of(sdist), "sdist", None, True, "the source: pip builds it where no wheel fits")
    )
    entries += [
        Entry(
            tarball.name,
            sha256_of(tarball),
            "static",
            target.name,
            False,
            "the static binary, for use without Python",
        )
        for target, tarball in zip(targets, tarballs)
    ]
    _remove_others(dist, {entry.file for entry in entries}, log)
    manifest = {
        "kexec-bin": release.wheel_version,
        "kexec-tools": release.version,
        "pypi-platform-rule": rule.source,
        "files": [asdict(entry) for entry in entries],
    }
    atomic.write_text(dist / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    _fill_pypi_folder(dist, [entry.file for entry in entries if entry.pypi])
    sums = atomic.write_text(
        dist / wheels.SUMS,
        "".join(
            f"{sha256_of(dist / name)}  {name}\n" for name in sorted([entry.file for entry in entries] + [MANIFEST])
        ),
    )
    for entry in entries:
        log(f"release: {entry.file}: {'PyPI and GitHub' if entry.pypi else 'GitHub only'} ({entry.why})")
    log(f"release: {len(entries)} files, {sums}")
    return entries


def _wheel_entry(made: Path, target: Target, rule: PlatformRule) -> Entry:
    refused = rule.refused_tags(made.name)
    if refused:
        why = f"PyPI refuses its platform tag(s) {', '.join(refused)}; pip there falls back to the sdist"
        return Entry(made.name, sha256_of(made), "wheel", target.name, False, why)
    return Entry(made.name, sha256_of(made), "wheel", target.name, True, "every platform tag is one PyPI accepts")


def static_tarball(source_wheel: Path, destination: Path, epoch: int) -> Path:
    """`write_static_tarball` through a cache in the build tree keyed by the wheel's sha256: the
    wheel's bytes decide the tarball's, so an unchanged wheel costs no compression."""
    cached = build_dir() / "static-tarballs" / sha256_of(source_wheel) / destination.name
    if not cached.exists():
        write_static_tarball(source_wheel, cached, epoch)
    return atomic.copy_file(cached, destination)


def write_static_tarball(source_wheel: Path, destination: Path, epoch: int) -> Path:
    """The wheel's kexec, its kexec-tools COPYING and its SBOM in a reproducible .tar.xz: members
    dated `epoch`, owned by root (0:0), in a fixed order and with fixed modes."""
    folder = destination.name.removesuffix(".tar.xz")
    with zipfile.ZipFile(source_wheel) as archive:
        names = archive.namelist()
        copying = next(name for name in names if re.search(r"\.dist-info/licenses/.*kexec-tools.*/COPYING$", name))
        sbom_file = next(name for name in names if name.endswith(f".dist-info/sboms/{sbom.FILE_NAME}"))
        members = [
            ("kexec", archive.read(hook.BINARY), 0o755),
            ("COPYING", archive.read(copying), 0o644),
            (sbom.FILE_NAME, archive.read(sbom_file), 0o644),
        ]
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_tar_info(folder, epoch, 0o755, tarfile.DIRTYPE))
        for name, data, mode in members:
            tar.addfile(_tar_info(f"{folder}/{name}", epoch, mode, tarfile.REGTYPE, len(data)), io.BytesIO(data))
    return atomic.write_bytes(destination, lzma.compress(stream.getvalue(), preset=9))


def _tar_info(name: str, epoch: int, mode: int, kind: bytes, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, epoch
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _remove_others(dist: Path, keep: set[str], log: Log) -> None:
    """dist/ holds one release: artifacts of other versions or targets are removed."""
    for pattern in _ARTIFACTS:
        for path in sorted(dist.glob(pattern)):
            if path.name not in keep:
                path.unlink()
                log(f"release: removed {path.name} (not part of this release)")


def _fill_pypi_folder(dist: Path, names: Sequence[str]) -> None:
    """dist/pypi/: hard links to exactly the PyPI-bound files, replaced as a whole."""
    partial = dist / f".{PYPI_FOLDER}.{os.getpid()}.part"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for name in names:
        os.link(dist / name, partial / name)
    shutil.rmtree(dist / PYPI_FOLDER, ignore_errors=True)
    partial.rename(dist / PYPI_FOLDER)


def run_check(dist: Path, tool: str, *arguments: str | Path) -> None:
    """Run the checker `tool` (a module: twine, check_wheel_contents) in `dist`; raise `ReleaseError` on a finding."""
    result = subprocess.run(
        [sys.executable, "-m", tool, *map(str, arguments)], cwd=dist, capture_output=True, text=True
    )
    if result.returncode:
        hint = (
            " (install the dev tools: .venv/bin/pip install -r requirements-dev.txt)"
            if "No module named" in result.stderr
            else ""
        )
        raise ReleaseError(
            f"{tool.replace('_', '-')} refused the release in {dist}{hint}:\n{result.stdout}{result.stderr}".rstrip()
        )
