"""Python in the harness's initramfs guest: Debian's python3 of the board's CPU and the packages of
some wheels, for a proof on a CPU whose Debian system cannot be debootstrapped here (no binfmt).

The interpreter comes from `kexec_build.testbed.debian_python` (the tree the wheel tests run under qemu-user);
the wheels are unpacked as pip would install them, without pip: their packages into Debian's
dist-packages (on the interpreter's own path), their scripts into /usr/local/bin (not on the
guest's PATH by default: `PATH` below adds it) with the shebang pointing at the interpreter.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Sequence

from ..recipes import Target
from ..testbed.debian_python import python_root

SITE = "usr/lib/python3/dist-packages"
SCRIPTS = "usr/local/bin"
PATH = f"export PATH=$PATH:/{SCRIPTS}"
"""The guest command that puts the wheels' scripts on the PATH, after the guest's own programs."""
# Parts of Debian's tree a guest does without: documentation, and /bin (busybox's in the guest).
LEFT_OUT = ("bin", "usr/share", ".complete")


def files(target: Target, wheels: Sequence[Path]) -> dict[str, Path | bytes]:
    """The guest files (guest path -> host file or bytes) of `target`'s python3 and `wheels`' packages and scripts."""
    tree, python = python_root(target)
    found: dict[str, Path | bytes] = {}
    for folder, directories, names in os.walk(tree):
        here = Path(folder)
        # A link to a folder stays a link (os.walk does not enter it); left-out parts are not entered.
        kept = [name for name in directories if str((here / name).relative_to(tree)) not in LEFT_OUT]
        directories[:] = [name for name in kept if not (here / name).is_symlink()]
        for name in [*names, *(name for name in kept if (here / name).is_symlink())]:
            relative = str((here / name).relative_to(tree))
            if relative not in LEFT_OUT:
                found[relative] = here / name
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                top, _, rest = member.partition("/")
                if not top.endswith(".data"):
                    found[f"{SITE}/{member}"] = archive.read(member)
                elif rest.startswith("scripts/"):  # the only .data scheme these wheels use
                    script = archive.read(member)
                    body = script.split(b"\n", 1)[1] if script.startswith(b"#!") else script
                    found[f"{SCRIPTS}/{rest[len('scripts/') :]}"] = f"#!/usr/bin/{python}\n".encode() + body
    return found
