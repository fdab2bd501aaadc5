"""The Python API: load, execute and unload kernels through the same program and checks as `kexec`.

Every path and string given here stays one operand of kexec: values are glued to their option
(`--initrd=FILE`, `--command-line=TEXT`: nothing in them can read as an option), and the kernel
comes last, as an absolute path (a name never starts with "-"), after `--`, which kexec-tools'
getopt honours. Only `KexecBinError` subclasses are raised; a bad argument is a `UsageError`
(also a `ValueError`).
"""

from __future__ import annotations

import functools
import os

from . import ops
from .doctor import preflight
from .errors import InternalError, KexecBinError, KexecError, UsageError
from .kernel import Kernel
from .resolve import child_environment, choose

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Sequence, TypeVar

    T = TypeVar("T")


def _only_kexec_bin_errors(function: Callable[..., T]) -> Callable[..., T]:
    """The API's promise: whatever goes wrong reaches the caller as a KexecBinError subclass."""

    @functools.wraps(function)
    def guarded(*args: object, **kwargs: object) -> T:
        try:
            return function(*args, **kwargs)
        except KexecBinError:
            raise
        except TypeError as error:
            if error.__traceback__ is not None and error.__traceback__.tb_next is None:
                # Raised by the call itself, not inside the function: arguments that do not fit its signature.
                raise UsageError(
                    f"kexec_bin.{function.__name__}: {error}; see help(kexec_bin.{function.__name__})"
                ) from None
            raise InternalError(f"kexec_bin.{function.__name__}: internal error (TypeError: {error})") from error
        except Exception as error:
            message = f"kexec_bin.{function.__name__}: internal error ({type(error).__name__}: {error})"
            raise InternalError(message) from error

    return guarded


@_only_kexec_bin_errors
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
    _run(args, ops.LOAD, ops.API_SYSCALLS[syscall], root)


@_only_kexec_bin_errors
def load_arguments(
    kernel: str | os.PathLike[str],
    initrd: str | os.PathLike[str] | None = None,
    cmdline: str | None = None,
    *,
    reuse_cmdline: bool = False,
    syscall: str = "auto",
    options: Sequence[str] = (),
) -> list:
    """kexec-tools' arguments for `load()`: the one place that spells a load out (the plans print it).

    Options first, each value glued to its option; the kernel last, absolute, after `--`.
    """
    if syscall not in ops.API_SYSCALLS:
        raise UsageError(f"syscall={syscall!r}: choose one of {', '.join(ops.API_SYSCALLS)}")
    if isinstance(options, str) or not all(_text("options", o).startswith("--") and o != "--" for o in options):
        raise UsageError(f"options={options!r}: give a list of long options (--name or --name=value)")
    args = ["--load", ops.SYSCALL_OPTIONS[ops.API_SYSCALLS[syscall]], *options]
    if initrd is not None:
        args.append(f"--initrd={_path('initrd', initrd)}")
    if reuse_cmdline:
        args.append("--reuse-cmdline")
    if cmdline is not None:
        text = _text("cmdline", cmdline)
        args.append(f"--append={text}" if reuse_cmdline else f"--command-line={text}")
    return [*args, "--", os.path.abspath(_path("kernel", kernel))]


@_only_kexec_bin_errors
def execute(*, root: str = "/") -> None:
    """Boot the loaded kernel now (kexec -e); returns only if that fails, by raising."""
    _run(["--exec"], ops.EXEC, ops.AUTO, root)


@_only_kexec_bin_errors
def unload() -> None:
    """Unload the loaded kernel (kexec -u)."""
    _run(["--unload"], None, ops.AUTO, "/")


@_only_kexec_bin_errors
def loaded(root: str = "/") -> bool:
    """Whether a kernel is loaded for `execute()` (false too when the kernel has no kexec at all)."""
    return Kernel(root).sysfs_kexec()["kexec_loaded"].value == "1"


def _path(name: str, value: object) -> str:
    """`value` (str, bytes or os.PathLike) as a path kexec can be given: not empty, no NUL."""
    try:
        path = os.fsdecode(value)  # type: ignore[arg-type]
    except TypeError:
        raise UsageError(f"{name}={value!r}: give a file path (str or os.PathLike)") from None
    if not path:
        raise UsageError(f"{name}='': give the path of the {name} file")
    return _text(name, path)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{name}={value!r}: give a str")
    if "\0" in value:
        raise UsageError(f"{name}={value!r}: a NUL character cannot be passed to kexec")
    return value


def _run(args: Sequence[str], action: str | None, syscall: str, root: str) -> None:
    choice = choose(verify=True)
    checked = preflight((action, syscall), choice, root) if action and not ops.checks_skipped() else None
    import subprocess  # here: a dry run prints load_arguments' words and runs nothing

    try:
        result = subprocess.run([choice.path, *args], capture_output=True, env=child_environment(choice))
    except OSError as error:
        raise KexecError(f"cannot run {choice.path}: {error.strerror} ({choice.reason})", 126, "") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        message = f"{choice.path} {' '.join(args)} failed (exit status {result.returncode}): {output}"
        causes = checked.blockers(action, syscall) if checked and action else []
        message += "".join(f"\n  possible cause: {f.meaning} ({f.evidence})" for f in causes)
        raise KexecError(message, result.returncode, output)
