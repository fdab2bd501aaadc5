"""Python in the harness's initramfs guest: Debian's python3 of the board's CPU and the packages of
some wheels, for a proof on a CPU whose Debian system cannot be debootstrapped here (no binfmt).

The interpreter comes from `kexec_build.debian_python` (the tree the wheel tests run under qemu-user);
the wheels are unpacked as pip would install them, without pip; their console scripts become small
shell scripts on the guest's PATH.
"""

from __future__ import annotations

import configparser
import os
import zipfile
from pathlib import Path
from typing import Sequence

from ..debian_python import python_root
from ..recipes import Target

SITE = "opt/python"
"""Where the wheels' packages are unpacked in the guest (the scripts' PYTHONPATH)."""
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
                if not member.split("/", 1)[0].endswith(".data"):  # the scripts pip would install: below
                    found[f"{SITE}/{member}"] = archive.read(member)
            found.update(_console_scripts(archive, f"/usr/bin/{python}"))
    return found


def _console_scripts(archive: zipfile.ZipFile, python: str) -> dict[str, bytes]:
    """bin/NAME for each console script the wheel declares, run by `python` with the unpacked packages."""
    declared = [name for name in archive.namelist() if name.endswith(".dist-info/entry_points.txt")]
    entry_points = configparser.ConfigParser(delimiters=("=",))
    entry_points.read_string(archive.read(declared[0]).decode() if declared else "")
    if not entry_points.has_section("console_scripts"):
        return {}
    scripts = {}
    for name, target in entry_points.items("console_scripts"):
        module, _, function = target.partition(":")
        function = function.strip()
        code = f"import sys; sys.argv[0] = '{name}'; from {module.strip()} import {function}; sys.exit({function}())"
        scripts[f"bin/{name}"] = f'#!/bin/sh\nPYTHONPATH=/{SITE} exec {python} -c "{code}" "$@"\n'.encode()
    return scripts
