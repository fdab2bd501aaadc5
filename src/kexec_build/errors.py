"""One root exception for the build toolkit, one subclass per area.

Only the tasks print: they turn a `BuildError` into a message and an exit code.
"""

from __future__ import annotations


class BuildError(Exception):
    """A problem the user can act on; the message names the thing and the fix."""

    exit_code = 1


class RecipeError(BuildError):
    """A recipe file is malformed, incomplete, or asked for something it does not have."""

    exit_code = 2


class FetchError(BuildError):
    """No source could be downloaded and verified."""

    exit_code = 3


class CacheError(FetchError):
    """The download cache cannot be used: not a writable folder, a full disk, or an entry that fails its hash."""


class UnpackError(BuildError):
    """A source archive is unsafe or unreadable."""

    exit_code = 4


class ToolchainError(BuildError):
    """A compiler, sysroot or host tool is missing."""

    exit_code = 5


class StepError(BuildError):
    """A build step (configure, make, strip, ...) failed."""

    exit_code = 6


class CheckError(BuildError):
    """A built binary is not what its target promises."""

    exit_code = 7


class WheelError(BuildError):
    """A wheel or sdist could not be made or does not verify."""

    exit_code = 8


class ProveError(BuildError):
    """A guest did not boot, or did not kexec into its next kernel as asked."""

    exit_code = 9


class GuestError(ProveError):
    """The guest did not print what was awaited in time (or its QEMU exited)."""


class ReleaseError(BuildError):
    """The release set in dist/ could not be assembled, or a check of it failed."""

    exit_code = 10


class UpdateError(BuildError):
    """A new upstream release could not be verified through its signature chain, or recorded."""

    exit_code = 11
