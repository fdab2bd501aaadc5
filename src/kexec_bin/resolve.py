"""Which program `kexec` runs: `KEXEC_BIN_PREFER`, else the host's kexec-tools, else the bundled one.

The host's kexec-tools is looked for in absolute PATH folders only, then /usr/sbin and /sbin; as
root, only a program that root alone can change is run (the file and every folder above it owned
by root, not writable by group or others: the rule sudo applies to its secure path). The bundled
binary is checked against the sha256 the build recorded before a load, panic or exec.

The shim imports this on every run, so it uses `os` alone until the bundled binary must be checked.
"""

import os
import sys

from .errors import BinaryError, ChoiceError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # the shim imports this module: no `typing` at run time
    from typing import Mapping

PREFER = "KEXEC_BIN_PREFER"
CHOICES = ("system", "bundled")
# Searched after PATH: a user's PATH often lacks the sbin folders where kexec-tools installs.
SYSTEM_DIRS = ("/usr/sbin", "/sbin")
BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "kexec")
# What every kexec-bin `kexec` script imports (src/scripts/kexec, or an older entry-point wrapper):
# another venv's script on PATH is never "the system's" kexec, or two shims would call each other.
_SHIM_MARK = b"kexec_bin"
# The system programs the `kexec` scripts of one chain of execs have chosen, os.pathsep-separated.
# A wrapper on PATH that runs another venv's `kexec` script would otherwise make them call each other
# forever: a program chosen once is never chosen again.
CHAIN = "KEXEC_BIN_CHAIN"


class Choice:
    """The program `kexec` will replace itself with, where it came from and why.

    `skipped` lists the (path, reason) of each kexec found on the way that may not run.
    """

    __slots__ = ("path", "reason", "skipped", "source")

    def __init__(self, path: str, source: str, reason: str, skipped: tuple = ()) -> None:
        self.path = path
        self.source = source  # "system" or "bundled"
        self.reason = reason
        self.skipped = skipped

    def __repr__(self) -> str:
        return f"Choice({self.path!r}, {self.source!r}, {self.reason!r})"


def choose(environ: "Mapping[str, str] | None" = None, shim: "str | None" = None, *, verify: bool = False) -> Choice:
    """Decide which kexec to run; `shim` is the script running now, which never counts as the system's.

    `verify` checks the bundled binary's sha256 too (before a load, panic or exec).
    """
    environ = os.environ if environ is None else environ
    shim = sys.argv[0] if shim is None else shim
    prefer = environ.get(PREFER, "")
    if prefer not in ("", *CHOICES):
        raise UsageError(f"{PREFER}={prefer!r} is not valid: set it to 'system' or 'bundled', or unset it")
    skipped: list = []
    if prefer != "bundled":
        found = system_kexec(environ.get("PATH", os.defpath), shim, skipped)
        if found:
            _refuse_loop(found, environ.get(CHAIN, ""), shim)
            where = "KEXEC_BIN_PREFER=system" if prefer else "the host's kexec-tools win over the bundled kexec"
            return Choice(found, "system", f"{where}; found {found}", tuple(skipped))
        if prefer == "system":
            raise ChoiceError(
                f"{PREFER}=system but no kexec-tools may run (searched PATH, {', '.join(SYSTEM_DIRS)}"
                f"{_skipped_text(skipped)}): install your distribution's kexec-tools, "
                f"or unset {PREFER} to use the bundled kexec"
            )
    why = "KEXEC_BIN_PREFER=bundled" if prefer else "no kexec-tools on PATH, /usr/sbin or /sbin"
    return Choice(
        binary(verify=verify), "bundled", f"{why}; using the kexec {_version()} bundled in the wheel", tuple(skipped)
    )


def child_environment(choice: Choice, environ: "Mapping[str, str] | None" = None) -> dict:
    """The environment to run `choice` in: a system program joins the chain, so it is never chosen twice."""
    environ = dict(os.environ if environ is None else environ)
    if choice.source == "system":
        chain = environ.get(CHAIN, "")
        environ[CHAIN] = f"{chain}{os.pathsep}{choice.path}" if chain else choice.path
    return environ


def _refuse_loop(found: str, chain: str, shim: str) -> None:
    if found in chain.split(os.pathsep):
        raise ChoiceError(
            f"kexec programs call each other in a loop: {found} was chosen as the system kexec earlier in this "
            f"chain ({' -> '.join(chain.split(os.pathsep))}) and started this kexec-bin script ({shim}) again. "
            f"{found} is not kexec-tools but runs a kexec-bin `kexec`: remove it from PATH, "
            f"or set {PREFER}=bundled"
        )


def system_kexec(search_path: str, shim: str = "", skipped: "list | None" = None) -> "str | None":
    """The first `kexec` in the absolute folders of `search_path`, then /usr/sbin and /sbin, that may run.

    A shim, a relative PATH entry and (as root) a program someone else could change are skipped,
    with the reason appended to `skipped` as (path, reason). The path returned has no symlinks:
    what runs is what was checked.
    """
    skipped = [] if skipped is None else skipped
    seen = set()
    as_root = os.geteuid() == 0
    for folder in (*search_path.split(os.pathsep), *SYSTEM_DIRS):
        candidate = os.path.join(folder, "kexec")
        if not os.path.isabs(folder):
            if os.path.isfile(candidate):
                skipped.append((candidate, f"PATH entry {folder!r} is not absolute: it means the current folder"))
            continue
        real = os.path.realpath(candidate)
        if real in seen or not (os.path.isfile(real) and os.access(real, os.X_OK)):
            continue
        seen.add(real)
        if _is_shim(real, shim):
            skipped.append((candidate, "a kexec-bin `kexec` script, not kexec-tools"))
            continue
        unsafe = _unsafe_for_root(real) if as_root else None
        if unsafe:
            skipped.append((candidate, f"{unsafe}: root runs only what root alone can change"))
            continue
        return real
    return None


def _unsafe_for_root(path: str) -> "str | None":
    """Why root must not run `path`, or None when it and every folder above it are root's alone.

    The file and its own folder must not be writable by group or others; a folder further up may
    be, with the sticky bit (as /tmp), since then nobody else can rename what root put in it.
    """
    current, level = path, 0
    while True:
        try:
            status = os.stat(current)
        except OSError as error:
            return f"{current}: {error.strerror}"
        what = "it" if level == 0 else f"its folder {current}"
        if status.st_uid != 0:
            return f"{what} is owned by uid {status.st_uid}, not root"
        if status.st_mode & 0o022 and not (level >= 2 and status.st_mode & 0o1000):
            return f"{what} is writable by group or others (mode {status.st_mode & 0o7777:o})"
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current, level = parent, level + 1


def _skipped_text(skipped: list) -> str:
    return "".join(f"; skipped {path}: {reason}" for path, reason in skipped)


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


def binary(verify: bool = True) -> str:
    """The bundled kexec, checked: present, for this machine's CPU, executable, and (`verify`) the very
    bytes the build made (their sha256 against the one recorded in the wheel's build info)."""
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
    if verify:
        unlike = _unlike_built(BUNDLED, getattr(info, "SHA256", None))
        if unlike:
            raise BinaryError(f"the bundled kexec ({BUNDLED}) is not the program this wheel was built with {unlike}")
    return BUNDLED


def carried(name: str) -> "tuple[str, str] | None":
    """A file the wheel carries besides kexec ("boot/memdisk"), checked like the bundled kexec before use:
    (its path, its sha256); None when this wheel carries no such file."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), *name.split("/"))
    if not os.path.isfile(path):
        return None
    try:
        from . import _build_info as info
    except ImportError:
        expected = None
    else:
        expected = getattr(info, "CARRIED", {}).get(name)
    unlike = _unlike_built(path, expected)
    if unlike or expected is None:  # no record: unlike says so
        from .errors import VerificationError

        raise VerificationError(f"{path}, carried in this wheel, is not the file it was built with {unlike}")
    return path, expected


def _unlike_built(path: str, expected: "str | None") -> "str | None":
    """How `path` differs from the file the build recorded (`expected`: its sha256), or None when it is that file."""
    got = sha256_of(path)
    if got == expected:
        return None
    return (
        f"(sha256 {got}, the build recorded {expected or 'none'}): it was damaged or replaced; "
        "reinstall kexec-bin (pip install --force-reinstall kexec-bin)"
    )


def sha256_of(path: str) -> str:
    """The file's sha256, hashed by the C module alone where it exists (hashlib loads OpenSSL: slower to start)."""
    try:
        from _sha256 import sha256  # Python 3.8 to 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # Python 3.12 on
        except ImportError:
            from hashlib import sha256
    digest = sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version() -> str:
    from . import _build_info as info

    return info.KEXEC_TOOLS_VERSION
