"""The guests' initramfs: busybox, the kexec under test and an init that takes orders on the console.

Written directly in the kernel's `newc` cpio format (by `kexec_bin.cpio`, the one writer), so
`/dev/console` can be a device node without `mknod` on the host, and the same inputs always give
the same bytes.
"""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

from kexec_bin import cpio

# What every guest's init does after its own setup: report the command line (where the tests
# put their markers), then run one console line at a time. With echo off, the host reads only
# what the commands print.
CONSOLE_LOOP = """echo "VMTEST-CMDLINE: $(cat /proc/cmdline)"
stty -echo 2>/dev/null
echo "VMTEST-READY"
while read -r line; do eval "$line"; done
"""
BUSYBOX_SETUP = """/bin/busybox --install -s /bin
mkdir -p /proc /sys /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
"""


def init_script(setup: str, shell: str = "/bin/sh") -> str:
    """An init that runs `setup`, then the console loop."""
    return f"#!{shell}\n{setup}{CONSOLE_LOOP}"


# `next-initrd` packs the running root into a new initrd, so any stage can kexec again (a chain).
NEXT_INITRD = """#!/bin/sh
# Pack this root (not /proc, /sys, nor earlier packs) into /tmp/next.cpio for the next kernel.
cd / && find . -xdev ! -path ./tmp/next.cpio | cpio -o -H newc > /tmp/next.cpio 2>/dev/null
"""


def build(files: dict[str, Path | bytes], destination: Path) -> Path:
    """Write a gzip newc archive: busybox-style root dirs, /dev/console, `files` (guest path -> host file or bytes).

    A host file that is a symbolic link stays one (with the same target) in the guest.
    """
    members: dict[str, tuple[int, bytes]] = {}
    for directory in ("bin", "dev", "proc", "sys", "tmp", "boot"):
        members[directory] = (stat.S_IFDIR | 0o755, b"")
    for guest_path, source in sorted(files.items()):
        parts = guest_path.strip("/").split("/")
        for depth in range(1, len(parts)):
            members.setdefault("/".join(parts[:depth]), (stat.S_IFDIR | 0o755, b""))
        if isinstance(source, Path) and source.is_symlink():
            members["/".join(parts)] = (stat.S_IFLNK | 0o777, os.readlink(source).encode())
        else:
            data = source if isinstance(source, bytes) else source.read_bytes()
            members["/".join(parts)] = (stat.S_IFREG | 0o755, data)
    console = ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1))
    archive = cpio.archive([*((name, mode, data) for name, (mode, data) in sorted(members.items())), console])
    partial = destination.with_name(destination.name + ".partial")
    with gzip.GzipFile(partial, "wb", mtime=0, compresslevel=1) as out:
        out.write(archive)
    partial.rename(destination)
    return destination


def guest_files(busybox: Path, kexec: Path, extra: dict[str, Path | bytes] | None = None) -> dict[str, Path | bytes]:
    """The files every guest needs, plus `extra` (kernels to load, installer images ...)."""
    return {
        "init": init_script(BUSYBOX_SETUP, shell="/bin/busybox sh").encode(),
        "bin/busybox": busybox,
        "bin/next-initrd": NEXT_INITRD.encode(),
        "sbin/kexec": kexec,
        **(extra or {}),
    }
