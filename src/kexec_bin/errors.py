"""One root exception for the runtime, one subclass per thing that can stop a kexec, one exit code each.

Only the commands (`kexec`, `kexec-bin`) print, and only through `guarded`: the one place that
turns an exception into a message and an exit status. The API raises these with the explanation
inside, and nothing else. The exit codes (sysexits-style; after `execv`, `kexec`'s status is
kexec-tools' own), each distinct so a script can tell them apart:

    0    ok
    1    the kernel refuses (BlockedError), or a story command cannot make its plan (PlanError)
    64   usage: a bad argument, KEXEC_BIN_PREFER value or --root (UsageError)
    65   a file or signature failed verification: bad signature, wrong checksum or size, a
         tampered Release or package (VerificationError, EX_DATAERR)
    69   no kexec program may run (ChoiceError, BinaryError)
    70   internal error: a bug in kexec-bin (InternalError, anything unexpected)
    74   the output could not be written (stdout: a full disk, a reader that went away)
    75   a mirror or the network could not be reached or broke off: try again or another
         mirror (DownloadError, EX_TEMPFAIL)
    126  the chosen kexec program exists but the system refused to run it
    130  interrupted (Ctrl-C)
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # the shim imports this module: no `typing` at run time
    from typing import Any, Callable

# The exit-code contract of `kexec` and `kexec-bin` (kexec's own status passes through unchanged).
EXIT_OK = 0
EXIT_BLOCKED = 1  # the kernel refuses (or the doctor cannot say it works)
EXIT_USAGE = 64  # EX_USAGE: bad arguments, KEXEC_BIN_PREFER or --root
EXIT_DATA = 65  # EX_DATAERR: a file or signature failed verification
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: no kexec program that may run (missing, damaged, a loop)
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in kexec-bin
EXIT_IO = 74  # EX_IOERR: the output could not be written (full disk, closed pipe)
EXIT_TEMPORARY = 75  # EX_TEMPFAIL: a mirror or the network could not be reached, or broke off
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
    """The kernel certainly refuses the operation; `support` holds the doctor's findings (a `findings.Support`).

    Typed loosely: errors is the bottom of the import graph, and findings imports it.
    """

    def __init__(self, message: str, support: "Any") -> None:
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
    """A file or signature failed verification: a bad signature, a wrong hash or size, a missing entry."""

    exit_code = EXIT_DATA


class DownloadError(KexecBinError):
    """A mirror or the network could not be reached, or broke off: running it again (or another mirror) may work.

    What came back but is not the file (a wrong hash or size) is a VerificationError.
    """

    exit_code = EXIT_TEMPORARY


class CacheError(KexecBinError):
    """The download cache cannot be written (a full disk, a cache path that is a file): not the network's fault."""

    exit_code = EXIT_IO


REPORT = "please report it to the kexec-bin project with the command you ran"
# errno values that mean the network, not this machine, is in the way (ENETUNREACH, EHOSTUNREACH,
# EADDRNOTAVAIL, ECONNREFUSED, ECONNRESET, ETIMEDOUT on Linux): try again, or another mirror.
_NETWORK_ERRNOS = {101, 113, 99, 111, 104, 110}


class OutputError(OSError):
    """Standard output could not be written (a full disk, a closed pipe): told apart from any other OSError."""


class _Output:
    """sys.stdout inside `guarded`: a failure to write it becomes an OutputError, and is remembered
    (argparse swallows an OSError from printing its --help; the status must still say it)."""

    def __init__(self, stream: "Any") -> None:
        self._stream = stream
        self.failed: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as error:
            raise self._failure(error) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            raise self._failure(error) from None

    def _failure(self, error: OSError) -> OutputError:
        self.failed = error
        return OutputError(error.errno, error.strerror)

    def __getattr__(self, name: str) -> "Any":
        return getattr(self._stream, name)


def guarded(program: str, function: "Callable[[], int]") -> int:
    """Run a command's body; return its status, or print one line for any failure and return its code.

    Output is flushed here, inside the boundary, so a closed pipe or a full disk is one error
    line and a code rather than a traceback at interpreter exit. Only a failure to write standard
    output is "cannot write the output"; any other OSError names its own file and cause.
    """
    stdout = sys.stdout
    output = None if stdout is None else _Output(stdout)
    try:
        try:
            reconfigure = getattr(stdout, "reconfigure", None)  # None: stdout closed, or not a text file
            if reconfigure:
                reconfigure(errors="backslashreplace")  # a path that is not UTF-8 is shown, not fatal
            sys.stdout = output
            status = function()
        except SystemExit as done:  # argparse's --help and usage errors end this way
            status = done.code if isinstance(done.code, int) else (0 if done.code is None else EXIT_USAGE)
        if output is not None:
            output.flush()
            if output.failed is not None:
                raise OutputError(output.failed.errno, output.failed.strerror)
        return status
    except KexecBinError as error:
        return complain(program, str(error), error.exit_code)
    except OutputError as error:
        sys.stdout = stdout
        _silence_stdout()
        if output is not None and isinstance(output.failed, BrokenPipeError):
            return EXIT_IO  # the reader went away (`kexec-bin doctor | head -1`): nothing to say
        return complain(program, f"cannot write the output: {error.strerror or error}", EXIT_IO)
    except OSError as error:
        return complain(program, _os_error_text(error), EXIT_TEMPORARY if error.errno in _NETWORK_ERRNOS else EXIT_IO)
    except KeyboardInterrupt:
        return complain(program, "interrupted", EXIT_INTERRUPTED)
    except Exception as error:
        return complain(program, f"internal error ({type(error).__name__}: {error}); {REPORT}", EXIT_INTERNAL)
    finally:
        sys.stdout = stdout


def _os_error_text(error: OSError) -> str:
    """An OSError that is not the output's: its file when known, its errno text, and for a full disk where to look."""
    text = f"{error.filename}: {error.strerror}" if error.filename else f"{error.strerror or error}"
    if error.errno == 28:  # ENOSPC, often from a write that names no file
        import tempfile

        text += f" (a full file system: the temporary folder {tempfile.gettempdir()}, or kexec-bin's cache?)"
    return text


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
