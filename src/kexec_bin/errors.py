"""One root exception for the runtime, one subclass per thing that can stop a kexec.

Only the commands (`kexec`, `kexec-bin`) print; the API raises these with the explanation inside.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the shim imports this module: no `typing` at run time
    from .doctor import Support


class KexecBinError(Exception):
    """A problem the user can act on; the message names the thing and the fix."""

    exit_code = 1


class ChoiceError(KexecBinError):
    """`KEXEC_BIN_PREFER` is invalid or names a kexec that is not there."""


class BinaryError(KexecBinError):
    """The bundled kexec is missing, not executable, or built for another CPU."""


class BlockedError(KexecBinError):
    """The kernel certainly refuses the operation; `support` holds the doctor's findings."""

    def __init__(self, message: str, support: Support) -> None:
        super().__init__(message)
        self.support = support


class KexecError(KexecBinError):
    """The kexec program ran and failed; `returncode` and `output` are its own."""

    def __init__(self, message: str, returncode: int, output: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.output = output
