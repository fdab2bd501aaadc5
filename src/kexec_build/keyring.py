"""Debian's archive keyring for the wheel, taken from Debian's own debian-archive-keyring package.

`kexec-bin netboot` verifies a mirror's InRelease with it when the host has no Debian keyring
(any non-Debian host). The package is pinned here by version and sha256, downloaded through the
private apt root (apt checks it against the archive's signed index; we check the pin) into the
cache by `kexec_build.bundled.pinned_deb`, as the files of recipes/bundled.toml are, and carried
by the sdist beside the upstream tarball so a wheel built from it needs no network.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import atomic
from .bundled import deb_member, deb_name, pinned_deb
from .paths import cache_dir

PACKAGE = "debian-archive-keyring"
VERSION = "2023.3+deb12u2"
DEB_SHA256 = "f699e2f88dca05212f2a452b58475f2993cb6993dfbafb1d0205a3291eb8b4b8"
SUITE = "bookworm"  # its keyring holds the bookworm and trixie archive and release keys
DEB = deb_name(PACKAGE, VERSION)
MEMBER = "usr/share/keyrings/debian-archive-keyring.gpg"
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
    deb = pinned_deb(PACKAGE, VERSION, SUITE, DEB_SHA256, bundled=bundled, cache=folder)
    target = folder / "debian-archive-keyring.gpg"
    if not target.is_file():
        atomic.write_bytes(target, deb_member(deb, MEMBER))
    return Keyring(path=target, deb=deb)
