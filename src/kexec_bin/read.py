"""One way to read untrusted files: capped, never waiting on a FIFO or a device, confined to a tree.

Every command reads files it did not write: a kernel's evidence under /proc and /sys, boot loader
menus, apt sources, a preseed, an ISO image's configs, a mirror's `file://` answers, whatever a
`--root` tree holds. All of them go through here, so a FIFO planted where a file should be is never
waited on, /dev/zero is never read to the end, and a symlink never leads out of a `--root` tree.

`read_capped` answers None when the file cannot be used (the doctor's probes report "unknown");
`read_regular` says why, for the story commands that must name the file and the fix.
"""

from __future__ import annotations

import os
import stat

from .errors import UsageError

# The kinds of file a path can be instead of a regular file, as a person would name them.
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a file of this mode is, for a message: "a regular file", "a FIFO", ..."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file")


def read_capped(path: str, limit: int) -> bytes | None:
    """The bytes of the regular file at `path` if it holds at most `limit` of them, else None.

    Opened without blocking (a FIFO planted in a --root tree must not hang the doctor) and read
    only when it is a regular file (procfs and sysfs files are), never past `limit` + 1 bytes
    (a huge sparse file, /dev/zero).
    """
    try:
        return read_regular(path, limit, "file")
    except UsageError:
        return None


def read_regular(path: str, limit: int, what: str) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them; else UsageError naming `what` and why.

    The same rules as `read_capped` (no wait on a FIFO or device, never more than `limit` + 1
    bytes read), with the reason kept: "the preseed /tmp/p is a FIFO, not a regular file".
    """
    descriptor = _open_regular(path, what)
    try:
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(descriptor, min(1 << 16, limit + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        raise UsageError(f"the {what} {path!r} is larger than {limit} bytes: that is not a {what}")
    except OSError as error:  # root-only files (lockdown, efivars) refuse the read, not the open
        raise UsageError(f"cannot read the {what} {path!r}: {error.strerror or error}") from None
    finally:
        os.close(descriptor)


def read_span(path: str, offset: int, size: int, what: str) -> bytes:
    """At most `size` bytes of the regular file at `path` from `offset` (fewer at its end); else UsageError.

    The same rules as `read_regular`, for a file read in parts: a kernel image's header, then its
    signature at the end, without reading the megabytes between.
    """
    descriptor = _open_regular(path, what)
    try:
        return os.pread(descriptor, size, offset)
    except OSError as error:
        raise UsageError(f"cannot read the {what} {path!r}: {error.strerror or error}") from None
    finally:
        os.close(descriptor)


def _open_regular(path: str, what: str) -> int:
    """A descriptor of the regular file at `path`, opened without blocking; else UsageError naming `what` and why."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError) as error:  # absent, unreadable, a loop of symlinks, a NUL in the path
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError(f"cannot read the {what} {path!r}: {reason}") from None
    try:
        mode = os.fstat(descriptor).st_mode
    except OSError as error:
        os.close(descriptor)
        raise UsageError(f"cannot read the {what} {path!r}: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise UsageError(f"the {what} {path!r} is {kind_of(mode)}, not a regular file: give a file")
    return descriptor


class Tree:
    """The files of a machine as seen under `root` ("/" for this one): paths mapped in, links kept inside."""

    def __init__(self, root: str = "/") -> None:
        if not isinstance(root, str) or not root or "\0" in root or not os.path.isdir(root):
            raise UsageError(
                f"root {root!r} is not a folder: give the folder that holds proc/, sys/ and boot/ "
                "as seen by the kernel to check (/ for this machine)"
            )
        self.root = root
        self._real_root = None if root == "/" else os.path.realpath(root)

    def path(self, path: str) -> str:
        """Where `path` (as seen on the machine) is under root."""
        return path if self.root == "/" else os.path.join(self.root, path.lstrip("/"))

    def inside(self, full: str) -> bool:
        """Whether `full` (a path under root) resolves inside the tree: no symlink out of a --root."""
        if self._real_root is None:
            return True
        real = os.path.realpath(full)
        return real == self._real_root or real.startswith(self._real_root.rstrip("/") + "/")

    def read_capped(self, path: str, limit: int) -> bytes | None:
        """`path`'s bytes (as seen on the machine), None when absent, unusable or leading out of the tree."""
        full = self.path(path)
        return read_capped(full, limit) if self.inside(full) else None

    def read_regular(self, path: str, limit: int, what: str) -> bytes:
        """`path`'s bytes (as seen on the machine), else UsageError naming `what` and why."""
        full = self.path(path)
        if not self.inside(full):
            raise UsageError(f"the {what} {full!r} leads out of the --root tree {self.root!r}")
        return read_regular(full, limit, what)
