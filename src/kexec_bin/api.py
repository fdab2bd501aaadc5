"""The Python API: load, execute and unload kernels through the same program and checks as `kexec`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Sequence

from .doctor import FILE, LOAD, preflight
from .errors import KexecError
from .resolve import choose

# load(syscall=...): kexec-tools' option for it, and the doctor's name for the syscalls it allows.
_SYSCALLS = {
    "auto": ("--kexec-syscall-auto", "auto"),
    "file": ("--kexec-file-syscall", FILE),
    "load": ("--kexec-syscall", LOAD),
}


def load(
    kernel: str | os.PathLike[str],
    initrd: str | os.PathLike[str] | None = None,
    cmdline: str | None = None,
    *,
    reuse_cmdline: bool = False,
    syscall: str = "auto",
    options: Sequence[str] = (),
    root: str = "/",
) -> None:
    """Load `kernel` for a later `execute()`; raise `BlockedError` or `KexecError` with the reason.

    `options`: further kexec-tools load options the kernel's format needs (x86: --real-mode).
    """
    args = load_arguments(kernel, initrd, cmdline, reuse_cmdline=reuse_cmdline, syscall=syscall, options=options)
    _run(args, "load", _SYSCALLS[syscall][1], root)


def load_arguments(
    kernel: str | os.PathLike[str],
    initrd: str | os.PathLike[str] | None = None,
    cmdline: str | None = None,
    *,
    reuse_cmdline: bool = False,
    syscall: str = "auto",
    options: Sequence[str] = (),
) -> list[str]:
    """kexec-tools' arguments for `load()`: the one place that spells a load out (the plans print it)."""
    if syscall not in _SYSCALLS:
        raise ValueError(f"syscall={syscall!r}: choose one of {', '.join(_SYSCALLS)}")
    args = ["--load", os.fspath(kernel), _SYSCALLS[syscall][0], *options]
    if initrd is not None:
        args.append(f"--initrd={os.fspath(initrd)}")
    if reuse_cmdline:
        args.append("--reuse-cmdline")
    if cmdline is not None:
        args.append(f"--append={cmdline}" if reuse_cmdline else f"--command-line={cmdline}")
    return args


def execute(*, root: str = "/") -> None:
    """Boot the loaded kernel now (kexec -e); returns only if that fails, by raising."""
    _run(["--exec"], "exec", "auto", root)


def unload() -> None:
    """Unload the loaded kernel (kexec -u)."""
    _run(["--unload"], None, "auto", "/")


def loaded(root: str = "/") -> bool:
    """Whether a kernel is loaded for `execute()` (false too when the kernel has no kexec at all)."""
    try:
        return (Path(root) / "sys/kernel/kexec_loaded").read_text().strip() == "1"
    except OSError:
        return False


def _run(args: Sequence[str], action: str | None, syscall: str, root: str) -> None:
    choice = choose()
    checked = preflight((action, syscall), choice, root) if action else None
    result = subprocess.run([choice.path, *args], capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        message = f"{choice.path} {' '.join(args)} failed (exit status {result.returncode}): {output}"
        causes = checked.blockers(action, syscall) if checked and action else []
        message += "".join(f"\n  possible cause: {f.meaning} ({f.evidence})" for f in causes)
        raise KexecError(message, result.returncode, output)
