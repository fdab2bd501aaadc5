"""Looking into built wheels: their members, their tags' CPUs, and the venv's packaging tools."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from kexec_build.recipes import Target


def tool(name: str) -> Path:
    """A program installed in this venv (twine, auditwheel, ...)."""
    return Path(sys.executable).parent / name


def platform_arch(platform: str, target: Target) -> str:
    """The CPU part of a platform tag: what follows its policy prefix (e.g. 'manylinux_2_17_')."""
    matching = [uname for uname in target.uname if platform.endswith(f"_{uname}")]
    assert matching, f"{platform} names none of {target.name}'s CPUs {target.uname}"
    return matching[0]


def member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def dist_info(path: Path) -> str:
    """The .dist-info folder name inside a wheel."""
    return "-".join(path.name.split("-")[:2]) + ".dist-info"
