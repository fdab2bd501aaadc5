"""unpack refuses unsafe archives before writing anything, and leaves nothing behind."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from kexec_build.errors import UnpackError
from kexec_build.unpack import unpack


def make_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for member in members:
            data = b"payload\n" if member.isfile() else None
            if data is not None:
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (member("kexec-tools-1/../../escape"), "'..' leaves the tree"),
        (member("/etc/evil"), "absolute path"),
        (member("kexec-tools-1/link", tarfile.SYMTYPE, "../../../etc/passwd"), "points outside the tree"),
        (member("kexec-tools-1/abs", tarfile.SYMTYPE, "/etc/passwd"), "points outside the tree"),
        (member("kexec-tools-1/hard", tarfile.LNKTYPE, "../outside"), "points outside the tree"),
        (member("kexec-tools-1/null", tarfile.CHRTYPE), "device or FIFO"),
        (member("kexec-tools-1/fifo", tarfile.FIFOTYPE), "device or FIFO"),
    ],
)
def test_unsafe_members_are_refused_and_nothing_is_written(tmp_path, bad, reason):
    archive = make_tar(tmp_path / "bad.tar.xz", [member("kexec-tools-1/README"), bad])
    out = tmp_path / "out" / "src"
    with pytest.raises(UnpackError, match=reason):
        unpack(archive, out)
    parent = tmp_path / "out"
    assert not parent.exists() or list(parent.iterdir()) == [], "no staging folder may be left behind"
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ([member("kexec-tools-1/a", tarfile.SYMTYPE, "..")], "points outside the tree"),
        # Each link alone stays inside; followed through x/a, x/b's '..' climbs above the top folder.
        (
            [member("kexec-tools-1/x/a", tarfile.SYMTYPE, ".."), member("kexec-tools-1/x/b", tarfile.SYMTYPE, "a/..")],
            "points outside the tree",
        ),
        (
            [
                member("kexec-tools-1/x/a", tarfile.SYMTYPE, ".."),
                member("kexec-tools-1/x/b", tarfile.SYMTYPE, "a/../../etc"),
            ],
            "points outside the tree",
        ),
        (
            [member("kexec-tools-1/l1", tarfile.SYMTYPE, "l2"), member("kexec-tools-1/l2", tarfile.SYMTYPE, "l1/x")],
            "is a link loop",
        ),
        (
            [member("kexec-tools-1/d", tarfile.SYMTYPE, "doc"), member("kexec-tools-1/d", tarfile.SYMTYPE, "..")],
            "a link defined twice",
        ),
    ],
)
def test_link_chains_that_leave_the_tree_are_refused_by_our_own_walk(tmp_path, bad, reason):
    archive = make_tar(tmp_path / "bad.tar.xz", [member("kexec-tools-1/README"), *bad])
    out = tmp_path / "out" / "src"
    with pytest.raises(UnpackError, match=reason):
        unpack(archive, out)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_chain_of_links_inside_the_tree_is_fine(tmp_path):
    archive = make_tar(
        tmp_path / "ok.tar.xz",
        [
            member("kexec-tools-1/doc/README"),
            member("kexec-tools-1/x/a", tarfile.SYMTYPE, ".."),
            member("kexec-tools-1/x/b", tarfile.SYMTYPE, "a/doc"),
        ],
    )
    out = unpack(archive, tmp_path / "src")
    assert (out / "x" / "b" / "README").read_text() == "payload\n"


def test_a_full_disk_while_unpacking_blames_the_disk_not_the_archive(tmp_path, mounted, upstream_dir, recipe_set):
    small = mounted("size=256k")
    with pytest.raises(UnpackError) as caught:
        unpack(upstream_dir / recipe_set.release().source, small / "src")
    message = str(caught.value)
    assert "No space left on device" in message and "free some space" in message
    assert "delete" not in message and "fetch again" not in message, "the cached archive is fine"
    assert list(small.iterdir()) == [], "the partial tree is removed"


def test_a_link_inside_the_tree_is_fine(tmp_path):
    archive = make_tar(
        tmp_path / "ok.tar.xz",
        [
            member("kexec-tools-1/README"),
            member("kexec-tools-1/doc/readme", tarfile.SYMTYPE, "../README"),
        ],
    )
    out = unpack(archive, tmp_path / "src")
    assert (out / "doc" / "readme").read_text() == "payload\n"


def test_a_damaged_archive_names_the_fix(tmp_path, upstream_dir, recipe_set):
    data = (upstream_dir / recipe_set.release().source).read_bytes()
    archive = tmp_path / "cut.tar.xz"
    archive.write_bytes(data[: len(data) // 3])
    with pytest.raises(UnpackError, match="fetch again"):
        unpack(archive, tmp_path / "src")
    assert not (tmp_path / "src").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cut.tar.xz"]


def test_the_real_tarball_unpacks(tmp_path, upstream_dir, recipe_set):
    out = unpack(upstream_dir / recipe_set.release().source, tmp_path / "src")
    assert (out / "configure").is_file() and (out / "COPYING").is_file()
