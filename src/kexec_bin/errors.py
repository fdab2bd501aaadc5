"""One root exception for the runtime, one subclass per thing that can stop a kexec, one exit code each.

Only the commands (`kexec`, `kexec-bin`) print, and only through `guarded`: the one place that
turns an exception into a message and an exit status (sysexits-style numbers, see the README's
"Security model"). The API raises these with the explanation inside, and nothing else.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # the shim imports this module: no `typing` at run time
    from typing import Callable

    from .findings import Support

# The exit-code contract of `kexec` and `kexec-bin` (kexec's own status passes through unchanged).
EXIT_OK = 0
EXIT_BLOCKED = 1  # the kernel refuses (or the doctor cannot say it works)
EXIT_USAGE = 64  # EX_USAGE: bad arguments, KEXEC_BIN_PREFER or --root
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: no kexec program that may run (missing, damaged, a loop)
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in kexec-bin
EXIT_IO = 74  # EX_IOERR: the output could not be written (full disk, closed pipe)
EXIT_CANNOT_EXECUTE = 126  # the chosen program exists but the system refused to run it
EXIT_INTERRUPTED = 130  # Ctrl-C


class KexecBinError(Exception):
    """A problem the user can act on; the message names the thing and the fix."""

    exit_code = EXIT_BLOCKED


class UsageError(KexecBinError, ValueError):
    """A bad argument (API or command line), `KEXEC_BIN_PREFER` value or `--root`."""

    exit_code = EXIT_USAGE


class ChoiceError(KexecBinError):
    """No kexec program may run: `KEXEC_BIN_PREFER=system` without kexec-tools, or shims in a loop."""

    exit_code = EXIT_UNAVAILABLE


class BinaryError(KexecBinError):
    """The bundled kexec is missing, not executable, built for another CPU, or not the bytes the build made."""

    exit_code = EXIT_UNAVAILABLE


class BlockedError(KexecBinError):
    """The kernel certainly refuses the operation; `support` holds the doctor's findings."""

    def __init__(self, message: str, support: "Support") -> None:
        super().__init__(message)
        self.support = support


class KexecError(KexecBinError):
    """The kexec program ran and failed (or could not start); `returncode` and `output` are its own."""

    def __init__(self, message: str, returncode: int, output: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.output = output


class InternalError(KexecBinError):
    """A bug in kexec-bin: the API's promise to raise only KexecBinError holds even then."""

    exit_code = EXIT_INTERNAL


class PlanError(KexecBinError):
    """A story command cannot make a plan: a file is missing, unverifiable or does not fit."""


class ConfigError(PlanError):
    """A boot config cannot be used: it points outside the image, or nests too deep."""


class BootError(KexecBinError):
    """The boot configuration names no usable kernel, or a file it names is missing."""


class VerificationError(KexecBinError):
    """A link of Debian's signed chain did not hold: a bad signature, a wrong hash, a missing entry."""


class DownloadError(KexecBinError):
    """A URL could not be fetched, or what came back is not the file that was asked for."""


class CacheError(KexecBinError):
    """The download cache cannot be written (a full disk, a cache path that is a file): not the network's fault."""

    exit_code = EXIT_IO


REPORT = "please report it to the kexec-bin project with the command you ran"


def guarded(program: str, function: "Callable[[], int]") -> int:
    """Run a command's body; return its status, or print one line for any failure and return its code.

    Output is flushed here, inside the boundary, so a closed pipe or a full disk is one error
    line and a code rather than a traceback at interpreter exit.
    """
    try:
        try:
            reconfigure = getattr(sys.stdout, "reconfigure", None)  # None: stdout closed, or not a text file
            if reconfigure:
                reconfigure(errors="backslashreplace")  # a path that is not UTF-8 is shown, not fatal
            status = function()
        except SystemExit as done:  # argparse's --help and usage errors end this way
            status = done.code if isinstance(done.code, int) else (0 if done.code is None else EXIT_USAGE)
        if sys.stdout is not None:
            sys.stdout.flush()
        return status
    except KexecBinError as error:
        return complain(program, str(error), error.exit_code)
    except BrokenPipeError:  # the reader went away (`kexec-bin doctor | head -1`): nothing to say
        _silence_stdout()
        return EXIT_IO
    except OSError as error:
        _silence_stdout()
        return complain(program, f"cannot write the output: {error.strerror or error}", EXIT_IO)
    except KeyboardInterrupt:
        return complain(program, "interrupted", EXIT_INTERRUPTED)
    except Exception as error:
        return complain(program, f"internal error ({type(error).__name__}: {error}); {REPORT}", EXIT_INTERNAL)


def complain(program: str, message: str, code: int) -> int:
    """Write `program: message` to stderr if there is one to write to; return `code`."""
    if sys.stderr is None:  # started with stderr closed
        return code
    try:
        sys.stderr.write(f"{program}: {message}\n".encode("utf-8", "backslashreplace").decode("utf-8"))
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr is gone too: the code is all that is left
        pass
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush of unwritten output cannot fail."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass
