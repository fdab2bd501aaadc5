"""Per-target sysroots in the cache: the target's static zlib and liblzma, unpacked from Debian.

The target's -dev packages are downloaded through a private apt root and unpacked with
`dpkg -x`: no foreign dpkg architecture is added to the host (multiarch ties the host's own
liblzma5 to the foreign one's version, and a mirror mid-sync then breaks the host's upgrades).
A sysroot is assembled in a temporary folder, proven by the caller (a static program using
every object of both libraries must link and run), and only then renamed into place.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .apt import PrivateApt
from .commands import Log, run
from .errors import ToolchainError
from .paths import cache_dir
from .recipes import Target

# Suites tried, in order, after the host's own when it lacks a target's packages: riscv64
# entered Debian's main archive with trixie. The stable suite comes first (it changes least);
# a newer suite's static libraries must still link against the host's cross C library, which
# the proof checks (trixie's and sid's do link against bookworm's glibc 2.36: no __isoc23_*).
LATER_SUITES = ("trixie", "sid")
MANIFEST = "sysroot.json"

# Given an unpacked candidate sysroot, raise ToolchainError unless it works; return evidence.
Prove = Callable[[Path], str]


def path(target: Target) -> Path:
    """Where `target`'s sysroot lives."""
    return cache_dir() / "sysroots" / target.name


def manifest_path(root: Path) -> Path:
    """The file that records what a sysroot holds; it exists only in a finished sysroot."""
    return root / MANIFEST


def manifest_text(root: Path) -> str:
    """The recorded contents of the sysroot at `root` (suite, package versions, proof)."""
    return manifest_path(root).read_text()


def host_suite(os_release: Path = Path("/etc/os-release")) -> str:
    """The host's release codename (e.g. 'bookworm'), whose packages match its cross C library."""
    fields = dict(
        line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line
    )
    codename = fields.get("VERSION_CODENAME", "").strip('"')
    if not codename:
        raise ToolchainError(f"{os_release} names no VERSION_CODENAME: cannot tell which suite to use")
    return codename


def candidate_suites() -> list[str]:
    """The suites to take a target's -dev packages from, most preferred first."""
    return list(dict.fromkeys([host_suite(), *LATER_SUITES]))


def ensure(target: Target, *, packages: tuple[str, ...], prove: Prove, log: Log = print) -> Path:
    """Return `target`'s sysroot, building it first from the first suite whose packages prove good."""
    root = path(target)
    if manifest_path(root).is_file():
        log(f"sysroot: {target.name} ready in {root}")
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest_path(root).is_file():  # built by another process while we waited
            return root
        rejected = []
        for suite in candidate_suites():
            with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=root.parent) as scratch:
                candidate = Path(scratch) / "root"
                try:
                    versions = _unpack(target, suite, packages, Path(scratch), candidate)
                    evidence = prove(candidate)
                except ToolchainError as error:
                    rejected.append(f"{suite}: {error}")
                    log(f"sysroot: {target.name}: not from {suite}: {str(error).splitlines()[0]}")
                    continue
                manifest = {"suite": suite, "architecture": target.debian_arch, "packages": versions,
                            "proof": evidence}
                manifest_path(candidate).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
                shutil.rmtree(root, ignore_errors=True)  # an unfinished leftover (no manifest)
                os.rename(candidate, root)
                log(f"sysroot: {target.name} from {suite}: "
                    + ", ".join(f"{name} {version}" for name, version in versions.items()) + f" ({evidence})")
                return root
        raise ToolchainError(
            f"no suite gives {target.name} ({target.debian_arch}) usable {', '.join(packages)}:\n  "
            + "\n  ".join(rejected)
        )


def _unpack(target: Target, suite: str, packages: tuple[str, ...], scratch: Path, into: Path) -> dict[str, str]:
    """Download `packages` for `target` from `suite` and unpack them into `into`; return their versions.

    The apt state (tens of MB of indexes) lives in `scratch` and goes with it: a finished sysroot
    never needs it again.
    """
    apt = PrivateApt(scratch / "apt", suites=[suite], architecture=target.debian_arch)
    versions = {}
    for deb in apt.download(packages, scratch / "debs"):
        fields = run("dpkg-deb", "--show", "--showformat", "${Package} ${Version}", deb, error=ToolchainError).stdout.split()
        versions[fields[0]] = fields[1]
        run("dpkg-deb", "-x", deb, into, error=ToolchainError)
    return versions

