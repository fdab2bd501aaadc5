"""A private apt root that downloads Debian packages and source files without touching the host.

The archive is the one the machine already uses (read from its own apt sources), so nothing
here names an archive host. No foreign dpkg architecture and no sources entry is added to the
host: the state lives in a folder of its own, and root is not needed.
"""

from __future__ import annotations

import fcntl
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from kexec_bin.debian.archive import HOST_KEYRING, apt_sources
from kexec_bin.read import Tree

from .commands import run
from .errors import ToolchainError
from .paths import cache_dir

HOST_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))
# Resolved at import, before a test points KEXEC_BIN_CACHE at a temporary folder: downloads persist.
APT_ROOTS = cache_dir() / "apt"


@dataclass(frozen=True)
class Archive:
    """One archive the host's apt reads from: its URI and the keyring that signs it."""

    uri: str
    keyring: str


@dataclass(frozen=True)
class RemoteFile:
    """A file apt would download: where from, its name and the sha256 from the signed index."""

    url: str
    name: str
    sha256: str


def host_archives(sources: Sequence[Path] = HOST_SOURCES) -> list[Archive]:
    """The main archives (not -security) listed in the host's deb822 and one-line apt sources (read by
    the runtime's one apt-sources reader, which skips `Enabled: no` entries and commented lines)."""
    entries = apt_sources(Tree("/"), [str(source) for source in sources])
    archives = [
        Archive(uri, entry.signed_by or HOST_KEYRING) for entry in entries if "deb" in entry.types for uri in entry.uris
    ]
    main = [a for a in dict.fromkeys(archives) if "security" not in a.uri]
    if not main:
        raise ToolchainError(
            "no Debian/Ubuntu archive found in /etc/apt/sources.list(.d): "
            "the private apt root copies the host's archive; add one to the host's apt sources"
        )
    return main


class PrivateApt:
    """An apt state folder for some suites and one architecture, updated on first use."""

    def __init__(
        self,
        root: Path,
        *,
        suites: Sequence[str],
        architecture: str,
        components: Sequence[str] = ("main",),
        types: Sequence[str] = ("deb", "deb-src"),
        archives: Sequence[Archive] | None = None,
    ) -> None:
        self.root = root
        self.types = tuple(types)
        self.suites = tuple(suites)
        self.architecture = architecture
        self.components = tuple(components)
        self.archives = tuple(archives or host_archives())

    def _options(self) -> list[str]:
        return [
            "-o",
            f"Dir::Etc::SourceList={self.root / 'etc/sources.list'}",
            "-o",
            f"Dir::Etc::SourceParts={self.root / 'etc/sources.list.d'}",
            "-o",
            f"Dir::Etc::Preferences={self.root / 'etc/preferences'}",
            "-o",
            f"Dir::Etc::PreferencesParts={self.root / 'etc/preferences.d'}",
            "-o",
            f"Dir::State={self.root / 'state'}",
            "-o",
            f"Dir::State::status={self.root / 'state/status'}",
            "-o",
            f"Dir::Cache={self.root / 'cache'}",
            "-o",
            f"APT::Architecture={self.architecture}",
            "-o",
            f"APT::Architectures={self.architecture}",
            "-o",
            "Acquire::Languages=none",
            "-o",
            "Debug::NoLocking=true",
        ]

    def _run(self, *args: str, cwd: Path | None = None, failure: str | None = None) -> str:
        """Run apt-get on this root; raise `ToolchainError` with `failure` (or the command) and its last errors."""
        failure = failure or f"apt-get {' '.join(args)} failed (private apt root {self.root})"
        return run("apt-get", "-q", *self._options(), *args, cwd=cwd, error=ToolchainError, failure=failure).stdout

    def update(self) -> None:
        """Write the sources and fetch the indexes, once (a lock keeps parallel callers apart)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            done = self.root / "state/updated"
            if done.exists():
                return
            for folder in ("etc/sources.list.d", "etc/preferences.d", "state/lists/partial", "cache/archives/partial"):
                (self.root / folder).mkdir(parents=True, exist_ok=True)
            (self.root / "etc/sources.list").write_text("")
            (self.root / "state/status").touch()
            stanzas = [
                f"Types: {' '.join(self.types)}\nURIs: {archive.uri}\nSuites: {' '.join(self.suites)}\n"
                f"Components: {' '.join(self.components)}\nSigned-By: {archive.keyring}\n"
                for archive in self.archives
            ]
            (self.root / "etc/sources.list.d/private.sources").write_text("\n".join(stanzas))
            self._run("update")
            done.touch()

    def source_files(self, package: str, suite: str) -> list[RemoteFile]:
        """The files of `package`'s source package in `suite`, with their signed sha256."""
        self.update()
        listing = self._run("source", "--print-uris", f"{package}/{suite}")
        return [
            RemoteFile(url=url, name=name, sha256=digest)
            for url, name, digest in re.findall(r"^'(\S+)' (\S+) \d+ SHA256:([0-9a-f]{64})$", listing, re.M)
        ]

    def download_source(self, package: str, version: str, into: Path) -> list[Path]:
        """Download the files of the source package `package` at `version` (.dsc, tarballs) into `into`."""
        self.update()
        into.mkdir(parents=True, exist_ok=True)
        failure = f"could not download the source package {package} {version} (suites {', '.join(self.suites)})"
        self._run("source", "--download-only", f"{package}={version}", cwd=into, failure=failure)
        return sorted(path for path in into.iterdir() if path.is_file())

    def download(self, packages: Sequence[str], into: Path) -> list[Path]:
        """Download the binary packages (for this root's architecture) into `into`."""
        self.update()
        into.mkdir(parents=True, exist_ok=True)
        self._run(
            "download",
            *packages,
            cwd=into,
            failure=f"could not download {', '.join(packages)} "
            f"for {self.architecture} (suites {', '.join(self.suites)})",
        )
        return sorted(into.glob("*.deb"))


@functools.lru_cache(maxsize=None)  # functools.cache is Python 3.9+; sdist builds run on 3.8
def apt_root(arch: str, suite: str) -> PrivateApt:
    """The private apt root for one Debian architecture and suite, kept in the cache (the bundled files'
    pinned packages and the testbed's packages share it)."""
    return PrivateApt(APT_ROOTS / f"{suite}-{arch}", suites=[suite], architecture=arch)
