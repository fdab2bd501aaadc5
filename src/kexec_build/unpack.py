"""Safe extraction: every member is checked before anything is written.

Refused: absolute paths, `..` components, links that resolve outside the tree, device files
and FIFOs. The tree appears at its final path by one rename, so it is whole or absent.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path

from .errors import UnpackError


def unpack(archive: Path, destination: Path) -> Path:
    """Extract `archive` (one top-level folder) so that its contents become `destination`."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            top = _check_members(archive, members)
            destination.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}."))
            try:
                tar.extractall(staging, members=members, **_extra_filter())
                shutil.rmtree(destination, ignore_errors=True)
                os.replace(staging / top, destination)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise UnpackError(f"{archive}: cannot unpack: {error}; delete it from the cache and fetch again") from None
    return destination


def _check_members(archive: Path, members: list[tarfile.TarInfo]) -> str:
    """Refuse unsafe members; return the single top-level folder name."""
    tops = set()
    for member in members:
        name = member.name
        if posixpath.isabs(name):
            raise UnpackError(f"{archive}: refusing member {name!r}: absolute path")
        if ".." in name.split("/"):
            raise UnpackError(f"{archive}: refusing member {name!r}: '..' leaves the tree")
        if member.isdev() or member.isfifo():
            raise UnpackError(f"{archive}: refusing member {name!r}: device or FIFO")
        if member.issym() or member.islnk():
            base = posixpath.dirname(name) if member.issym() else ""
            resolved = posixpath.normpath(posixpath.join(base, member.linkname))
            if posixpath.isabs(member.linkname) or resolved == ".." or resolved.startswith("../"):
                raise UnpackError(
                    f"{archive}: refusing member {name!r}: link to {member.linkname!r} points outside the tree"
                )
        tops.add(name.split("/", 1)[0])
    if len(tops) != 1:
        raise UnpackError(f"{archive}: expected one top-level folder, found {sorted(tops) or 'none'}")
    return tops.pop()


def _extra_filter() -> dict:
    """Python's own 'data' filter where it exists, as a second guard behind our checks."""
    return {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
