"""The kernel's initramfs format, written: an uncompressed "newc" cpio archive (what the kernel unpacks
from each initrd it is given, concatenated ones included). Used by netboot (a preseed file as an
extra initrd) and by the toolkit's VM harness (a guest's whole initramfs)."""

from __future__ import annotations

from typing import Iterable

REGULAR = 0o100644
TRAILER = "TRAILER!!!"


def entry(name: str, mode: int, data: bytes = b"", *, ino: int, rdev: tuple[int, int] = (0, 0)) -> bytes:
    """One member: header (13 fields of 8 hex digits), NUL-terminated name and data, each padded to 4 bytes."""
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
    out = b"070701" + b"".join(b"%08X" % value for value in fields) + encoded
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(out) % 4)


def archive(members: Iterable[tuple[str, int, bytes] | tuple[str, int, bytes, tuple[int, int]]]) -> bytes:
    """The archive of `members` ((name, mode, data[, (major, minor)]), in order, numbered from 1) and its trailer."""
    out = bytearray()
    number = 0
    for number, (name, mode, data, *device) in enumerate(members, start=1):
        out += entry(name, mode, data, ino=number, rdev=device[0] if device else (0, 0))
    out += entry(TRAILER, 0, ino=number + 1)
    return bytes(out)
