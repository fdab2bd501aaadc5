"""Debian's archive keyring for the wheel, taken from Debian's own debian-archive-keyring package.

`kexec-bin netboot` verifies a mirror's InRelease with it when the host has no Debian keyring
(any non-Debian host). The package is pinned here by version and sha256, downloaded through the
private apt root (apt checks it against the archive's signed index; we check the pin) into the
cache, and carried by the sdist beside the upstream tarball so a wheel built from it needs no
network.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import atomic, debian_packages
from .errors import BuildError
from .paths import cache_dir

PACKAGE = "debian-archive-keyring"
VERSION = "2023.3+deb12u2"
DEB_SHA256 = "f699e2f88dca05212f2a452b58475f2993cb6993dfbafb1d0205a3291eb8b4b8"
SUITE = "bookworm"  # its keyring holds the bookworm and trixie archive and release keys
DEB = f"{PACKAGE}_{VERSION}_all.deb"
MEMBER = "./usr/share/keyrings/debian-archive-keyring.gpg"
WHEEL_PATH = "kexec_bin/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class Keyring:
    """The keyring file taken from the pinned package, and the package it came from."""

    path: Path
    deb: Path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def keyring(bundled: Path | None = None) -> Keyring:
    """The pinned package's keyring: from `bundled` (an sdist's folder) or the cache, else downloaded."""
    folder = cache_dir() / "keyring" / f"{PACKAGE}_{VERSION}"
    deb = bundled / DEB if bundled and (bundled / DEB).is_file() else folder / DEB
    if not deb.is_file():
        _download(deb)
    got = hashlib.sha256(deb.read_bytes()).hexdigest()
    if got != DEB_SHA256:
        raise BuildError(f"{deb}: sha256 {got}, but kexec_build/keyring.py pins {DEB_SHA256} for {DEB}; "
                         "remove the file to fetch it again, or update VERSION and DEB_SHA256 there")
    target = folder / "debian-archive-keyring.gpg"
    if not target.is_file():
        atomic.write_bytes(target, _member(deb, MEMBER))
    return Keyring(path=target, deb=deb)


def _download(deb: Path) -> None:
    deb.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=deb.parent) as partial:
        # An "all" package: any architecture's index lists it.
        (downloaded,) = debian_packages.apt_root("amd64", SUITE).download([f"{PACKAGE}={VERSION}"], Path(partial))
        downloaded.rename(deb)


def _member(deb: Path, name: str) -> bytes:
    """One file of a .deb's data archive (dpkg-deb reads whichever compression it uses)."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        member = archive.extractfile(name)
        if member is None:
            raise BuildError(f"{deb} holds no {name}: the package changed its layout; update kexec_build/keyring.py")
        return member.read()
