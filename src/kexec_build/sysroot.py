"""Per-target sysroots in the cache: the target's static zlib and liblzma, unpacked from Debian.

The target's -dev packages are downloaded through a private apt root and unpacked with
`dpkg -x`: no foreign dpkg architecture is added to the host (multiarch ties the host's own
liblzma5 to the foreign one's version, and a mirror mid-sync then breaks the host's upgrades).
A sysroot is assembled in a temporary folder, proven by the caller (a static program using
every object of both libraries must link and run), and only then renamed into place, with a
record of every file's sha256. Each use checks the files against that record: the cache is a
folder anyone with the user's rights can change, and what links into kexec must be what apt
verified and the proof ran.
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
from .digest import sha256_of
from .errors import ToolchainError
from .paths import cache_dir
from .recipes import Target

# Suites tried, in order, after the host's own when it lacks a target's packages: riscv64
# entered Debian's main archive with trixie. The stable suite comes first (it changes least);
# a newer suite's static libraries must still link against the host's cross C library, which
# the proof checks (trixie's and sid's do link against bookworm's glibc 2.36: no __isoc23_*).
LATER_SUITES = ("trixie", "sid")
MANIFEST = "sysroot.json"
# Every file's sha256 (a link's target), written last: a sysroot without it is unfinished.
FILES_RECORD = "sysroot-files.json"

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


def finished(root: Path) -> bool:
    """Whether the sysroot at `root` was completed: proven, described and its files recorded."""
    return manifest_path(root).is_file() and (root / FILES_RECORD).is_file()


def verified_manifest(root: Path, target: Target) -> str:
    """`manifest_text(root)`, once every file is checked against the record made when it was proven.

    Raise `ToolchainError` naming what changed and the command that rebuilds the sysroot.
    """
    fix = f"rebuild it: rm -rf {root} && inv toolchain --arch {target.name}"
    try:
        recorded = json.loads((root / FILES_RECORD).read_text())
    except (OSError, ValueError) as error:
        raise ToolchainError(
            f"the {target.name} sysroot {root} has no readable record of its files "
            f"({error}; made by an older kexec-bin?): {fix}"
        ) from None
    found = _files(root)
    changed = sorted(name for name in recorded.keys() | found.keys() if recorded.get(name) != found.get(name))
    if changed:
        first = changed[0]
        raise ToolchainError(
            f"the {target.name} sysroot {root} changed after it was proven: {first}: expected "
            f"{recorded.get(first, 'no such file')}, got {found.get(first, 'no such file')}"
            + (f" (and {len(changed) - 1} more)" if len(changed) > 1 else "")
            + f"; something rewrote the cache (disk damage, or a hand), so it is not used: {fix}"
        )
    return manifest_text(root)


def _files(root: Path) -> dict[str, str]:
    """Every file under `root` (but the record itself) → its sha256, or a link → its target."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            relative = str(path.relative_to(root))
            if relative != FILES_RECORD:
                found[relative] = f"link to {os.readlink(path)}" if path.is_symlink() else f"sha256 {sha256_of(path)}"
    return found


def host_suite(os_release: Path = Path("/etc/os-release")) -> str:
    """The host's release codename (e.g. 'bookworm'), whose packages match its cross C library."""
    fields = dict(line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line)
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
    if finished(root):
        log(f"sysroot: {target.name} ready in {root}")
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if finished(root):  # built by another process while we waited
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
                manifest = {"suite": suite, "architecture": target.debian_arch, "packages": versions, "proof": evidence}
                manifest_path(candidate).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
                (candidate / FILES_RECORD).write_text(json.dumps(_files(candidate), indent=2, sort_keys=True) + "\n")
                shutil.rmtree(root, ignore_errors=True)  # an unfinished leftover, or one made by an older kexec-bin
                os.rename(candidate, root)
                log(
                    f"sysroot: {target.name} from {suite}: "
                    + ", ".join(f"{name} {version}" for name, version in versions.items())
                    + f" ({evidence})"
                )
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
        fields = run(
            "dpkg-deb", "--show", "--showformat", "${Package} ${Version}", deb, error=ToolchainError
        ).stdout.split()
        versions[fields[0]] = fields[1]
        run("dpkg-deb", "-x", deb, into, error=ToolchainError)
    return versions
