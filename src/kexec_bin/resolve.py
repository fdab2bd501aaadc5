"""Which program `kexec` runs: `KEXEC_BIN_PREFER`, else the host's kexec-tools, else the bundled one.

The shim imports this on every run, so it uses `os` alone until the bundled binary must be checked.
"""

from __future__ import annotations

import os
import sys

from .errors import BinaryError, ChoiceError

PREFER = "KEXEC_BIN_PREFER"
CHOICES = ("system", "bundled")
# Searched after PATH: a user's PATH often lacks the sbin folders where kexec-tools installs.
SYSTEM_DIRS = ("/usr/sbin", "/sbin")
BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "kexec")
# What every kexec-bin `kexec` script imports (src/scripts/kexec, or an older entry-point wrapper):
# another venv's script on PATH is never "the system's" kexec, or two shims would call each other.
_SHIM_MARK = b"kexec_bin"


class Choice:
    """The program `kexec` will replace itself with, where it came from and why."""

    __slots__ = ("path", "source", "reason")

    def __init__(self, path: str, source: str, reason: str) -> None:
        self.path = path
        self.source = source  # "system" or "bundled"
        self.reason = reason

    def __repr__(self) -> str:
        return f"Choice({self.path!r}, {self.source!r}, {self.reason!r})"


def choose(environ: dict[str, str] | None = None, shim: str | None = None) -> Choice:
    """Decide which kexec to run; `shim` is the script running now, which never counts as the system's."""
    environ = os.environ if environ is None else environ
    shim = sys.argv[0] if shim is None else shim
    prefer = environ.get(PREFER, "")
    if prefer not in ("", *CHOICES):
        raise ChoiceError(f"{PREFER}={prefer!r} is not valid: set it to 'system' or 'bundled', or unset it")
    if prefer != "bundled":
        found = system_kexec(environ.get("PATH", os.defpath), shim)
        if found:
            where = "KEXEC_BIN_PREFER=system" if prefer else "the host's kexec-tools win over the bundled kexec"
            return Choice(found, "system", f"{where}; found {found}")
        if prefer == "system":
            raise ChoiceError(
                f"{PREFER}=system but no kexec-tools is installed (searched PATH, {', '.join(SYSTEM_DIRS)}): "
                f"install your distribution's kexec-tools, or unset {PREFER} to use the bundled kexec"
            )
    why = "KEXEC_BIN_PREFER=bundled" if prefer else "no kexec-tools on PATH, /usr/sbin or /sbin"
    return Choice(binary(), "bundled", f"{why}; using the kexec {_version()} bundled in the wheel")


def system_kexec(search_path: str, shim: str = "") -> str | None:
    """The first executable `kexec` on `search_path`, then in /usr/sbin and /sbin, that is not a shim."""
    seen = set()
    for folder in (*search_path.split(os.pathsep), *SYSTEM_DIRS):
        candidate = os.path.join(folder or ".", "kexec")
        real = os.path.realpath(candidate)
        if real in seen or not (os.path.isfile(real) and os.access(real, os.X_OK)):
            continue
        seen.add(real)
        if not _is_shim(real, shim):
            return candidate
    return None


def _is_shim(path: str, shim: str) -> bool:
    """True for this very script, the bundled binary, and any kexec_bin console script (no loops)."""
    if path == os.path.realpath(BUNDLED) or (shim and os.path.realpath(shim) == path):
        return True
    try:
        with open(path, "rb") as file:
            head = file.read(1024)
    except OSError:
        return False
    return head.startswith(b"#!") and _SHIM_MARK in head


def binary() -> str:
    """The bundled kexec, checked: present, for this machine's CPU, executable."""
    try:
        from . import _build_info as info
    except ImportError:
        raise BinaryError(
            "no bundled kexec: this is a source checkout, not an installed wheel; "
            "build one with `inv wheel` and install it from dist/, or `pip install kexec-bin`"
        ) from None
    if not os.path.isfile(BUNDLED):
        raise BinaryError(f"the bundled kexec is missing ({BUNDLED}): the install is damaged; reinstall kexec-bin")
    machine = os.uname().machine
    if machine not in info.UNAME:
        raise BinaryError(
            f"the bundled kexec is built for {info.TARGET} but this machine is {machine}: "
            f"install the kexec-bin wheel for {machine} (pip picks it by platform unless told otherwise)"
        )
    from .elf import machine as elf_machine

    found = elf_machine(BUNDLED)
    if found != info.ELF_MACHINE:
        raise BinaryError(
            f"the bundled kexec ({BUNDLED}) is {found or 'not an ELF program'}, "
            f"but this wheel is for {info.TARGET} ({info.ELF_MACHINE}): the wheel is broken; reinstall kexec-bin"
        )
    if not os.access(BUNDLED, os.X_OK):
        mode = os.stat(BUNDLED).st_mode & 0o777
        raise BinaryError(
            f"the bundled kexec is not executable (mode {mode:o}): the wheel was unpacked without "
            f"permissions; reinstall kexec-bin with pip, or run: chmod +x {BUNDLED}"
        )
    return BUNDLED


def _version() -> str:
    from . import _build_info as info

    return info.KEXEC_TOOLS_VERSION
