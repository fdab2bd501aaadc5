"""Debian packages for the VM harness and the tests: downloaded once through `apt`, unpacked with `dpkg -x`.

Nothing is installed on the host: a package is fetched into the user's cache and extracted into a
tree there, so later runs need no network.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from ..apt import apt_root
from ..commands import run
from ..paths import cache_dir

SUITE = "bookworm"
# Resolved at import, before a test points KEXEC_BIN_CACHE at a temporary folder: downloads persist.
CACHE = cache_dir()


def deb(package: str, arch: str = "amd64", suite: str = SUITE) -> Path:
    """The .deb of `package` for `arch` from `suite`, downloaded once into the cache."""
    folder = CACHE / "debian" / suite / arch / package
    found = sorted(folder.glob("*.deb"))
    if not found:
        with tempfile.TemporaryDirectory(dir=_ensure(folder.parent)) as partial:
            (downloaded,) = apt_root(arch, suite).download([package], Path(partial) / "debs")
            _ensure(folder)
            found = [downloaded.rename(folder / downloaded.name)]
    return found[0]


def unpacked(package: str, arch: str = "amd64", suite: str = SUITE) -> Path:
    """`package` extracted with `dpkg -x` into the cache, once; a metapackage is followed to its target."""
    package_deb = deb(package, arch, suite)
    target = _metapackage_target(package, package_deb)
    if target:
        return unpacked(target, arch, suite)
    tree = package_deb.with_suffix(".tree")
    if not tree.exists():
        partial = Path(tempfile.mkdtemp(dir=tree.parent))
        run("dpkg-deb", "-x", package_deb, partial)
        try:
            partial.rename(tree)
        except OSError:  # a parallel run (pytest -n 2, another checkout) unpacked it first: keep that one
            if not tree.exists():
                raise
            shutil.rmtree(partial)
    return tree


def _metapackage_target(package: str, package_deb: Path) -> str | None:
    """The kernel a linux-image-<flavour> metapackage points at (it ships no kernel of its own)."""
    if not re.fullmatch(r"linux-image-(?!\d+\.)[\w-]+", package):
        return None
    depends = run("dpkg-deb", "-f", package_deb, "Depends").stdout
    match = re.match(r"(linux-image-\d[\w.+-]*)", depends.strip())
    return match.group(1) if match else None


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
