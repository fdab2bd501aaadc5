"""Safe extraction: every member is checked before anything is written.

Refused: absolute paths, `..` components, links that resolve outside the tree, device files
and FIFOs. Links are resolved by our own walk through the archive's links (a chain such as
`x/a -> ..`, `x/b -> a/..` looks harmless link by link), not left to Python's tarfile filter,
which older Pythons lack. The tree appears at its final path by one rename, so it is whole or
absent.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path

from .errors import UnpackError

# More links than this on one path is a loop (Linux's own limit, MAXSYMLINKS, is 40).
MAX_LINK_HOPS = 40


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
    except (tarfile.TarError, EOFError) as error:
        raise UnpackError(f"{archive}: cannot unpack: {error}; delete it from the cache and fetch again") from None
    except OSError as error:
        # The archive is fine (a damaged one fails above): the destination's disk is the problem.
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        fix = "free some space on that disk" if full else "choose a folder you can write"
        raise UnpackError(f"cannot unpack {archive.name} into {destination.parent}: {error.strerror}; {fix}") from None
    return destination


def _check_members(archive: Path, members: list[tarfile.TarInfo]) -> str:
    """Refuse unsafe members; return the single top-level folder name."""
    tops = set()
    links: dict[str, str] = {}
    for member in members:
        name = member.name
        if posixpath.isabs(name):
            raise UnpackError(f"{archive}: refusing member {name!r}: absolute path")
        if ".." in name.split("/"):
            raise UnpackError(f"{archive}: refusing member {name!r}: '..' leaves the tree")
        if member.isdev() or member.isfifo():
            raise UnpackError(f"{archive}: refusing member {name!r}: device or FIFO")
        if member.issym():
            if posixpath.normpath(name) in links:  # which target wins would depend on extraction order
                raise UnpackError(f"{archive}: refusing member {name!r}: a link defined twice")
            links[posixpath.normpath(name)] = member.linkname
        tops.add(name.split("/", 1)[0])
    if len(tops) != 1:
        raise UnpackError(f"{archive}: expected one top-level folder, found {sorted(tops) or 'none'}")
    for member in members:
        # Where the member is written, and where a link leads, followed through the archive's links.
        paths = [posixpath.dirname(member.name)]
        if member.issym():
            paths.append(posixpath.join(posixpath.dirname(member.name), member.linkname))
        elif member.islnk():  # a hard link names its target from the archive's root
            paths.append(member.linkname)
        for path in paths:
            problem = _leaves_tree(path, links)
            if problem:
                via = f"link to {member.linkname!r}" if member.issym() or member.islnk() else "its folder"
                raise UnpackError(f"{archive}: refusing member {member.name!r}: {via} {problem}")
    return tops.pop()


def _leaves_tree(path: str, links: dict[str, str]) -> str | None:
    """Why `path` (from the archive's root), with every link in it followed, leaves the top folder; None if it stays."""
    if posixpath.isabs(path):
        return "points outside the tree"
    resolved: list[str] = []
    pending = path.split("/")
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if len(resolved) <= 1:  # above the top folder: outside what becomes the destination
                return "points outside the tree"
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get("/".join(resolved))
        if target is not None:
            hops += 1
            if hops > MAX_LINK_HOPS:
                return "is a link loop"
            if posixpath.isabs(target):
                return "points outside the tree"
            resolved.pop()  # the link's target is relative to the folder holding the link
            pending = target.split("/") + pending
    return None


def _extra_filter() -> dict:
    """Python's own 'data' filter where it exists, as a second guard behind our checks."""
    return {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
