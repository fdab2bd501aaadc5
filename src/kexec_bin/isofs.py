"""An ISO 9660 image read by path, the way a boot loader reads it: only the directories on the way and
the files asked for, never the whole directory tree (an image of 60,000 files costs no more than one
of ten). Names are Rock Ridge's when the image has them, else Joliet's, else ISO 9660's own (matched
without case, as isolinux and GRUB do). Rock Ridge symbolic links are followed inside the image only.

Standard library only: the volume descriptors (ECMA-119 8.4, Joliet's supplementary one), the
directory records (9.1) and the SUSP/Rock Ridge entries NM, SL and CE (IEEE P1281/P1282).
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass

from .errors import PlanError
from .menus import normalise
from .read import kind_of

SECTOR = 2048
PVD_OFFSET = 16 * SECTOR
CHUNK = 4 << 20
# Joliet's escape sequences for UCS-2 levels 1 to 3 in a supplementary volume descriptor.
JOLIET_ESCAPES = (b"%/@", b"%/C", b"%/E")
MAX_DESCRIPTORS = 64
MAX_SYMLINK_HOPS = 16
# A directory larger than this is no boot medium's (Debian's largest, pool/main, is a few hundred KiB).
MAX_DIRECTORY_BYTES = 64 << 20
MAX_CONTINUATIONS = 32


@dataclass(frozen=True)
class Record:
    """A file or folder of the image: where its data is and how long it is."""

    name: str
    extent: int
    size: int
    is_dir: bool
    multi_extent: bool
    symlink: str | None


class IsoImage:
    """An ISO 9660 image file (or block device) opened for reading by path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rock_ridge = self.joliet = False
        self.device = False
        """Whether the image is a disc (a block device such as /dev/sr0) rather than a file."""
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as error:
            raise PlanError(
                f"{path}: cannot read the image ({error.strerror}); give the path of an .iso file"
            ) from None
        try:
            self.size, self.device = _size(self._fd, path)
            self._open_volume()
        except BaseException:
            os.close(self._fd)
            raise

    def __enter__(self) -> IsoImage:
        return self

    def __exit__(self, *_exc: object) -> None:
        os.close(self._fd)

    def damaged(self, why: str) -> PlanError:
        return PlanError(f"{self.path}: not a readable ISO 9660 image ({why}); give the path of an .iso file")

    def _pread(self, count: int, offset: int) -> bytes:
        try:
            return os.pread(self._fd, count, offset)
        except OSError as error:
            raise PlanError(f"{self.path}: cannot read the image ({error.strerror})") from None

    def _open_volume(self) -> None:
        primary = joliet = None
        for index in range(MAX_DESCRIPTORS):
            descriptor = self._pread(SECTOR, PVD_OFFSET + index * SECTOR)
            if len(descriptor) < SECTOR or descriptor[1:6] != b"CD001":
                break
            if descriptor[0] == 1 and primary is None:
                primary = descriptor
            elif descriptor[0] == 2 and descriptor[88:91] in JOLIET_ESCAPES and joliet is None:
                joliet = descriptor
            elif descriptor[0] == 255:
                break
        if primary is None:
            raise PlanError(
                f"{self.path}: not an ISO 9660 image (no primary volume descriptor at byte {PVD_OFFSET}); "
                "give the path of an .iso file"
            )
        (blocks,) = struct.unpack_from("<I", primary, 80)
        (self.block_size,) = struct.unpack_from("<H", primary, 128)
        if self.block_size not in (512, 1024, 2048):
            raise self.damaged(f"a logical block size of {self.block_size} bytes")
        volume = blocks * self.block_size
        if self.size < volume:
            raise PlanError(
                f"{self.path}: truncated: the image is {self.size} bytes and its volume {volume}; "
                "download or copy it again and compare its checksum"
            )
        root = self._record(primary[156:190], rock_ridge=False)
        if root is None or not root.is_dir:
            raise self.damaged("its root directory record is broken")
        if root.extent * self.block_size + root.size > self.size:
            raise self.damaged("its root directory lies past the end of the image")
        self.rock_ridge = self._has_rock_ridge(root)
        self.joliet = not self.rock_ridge and joliet is not None
        if self.joliet:
            assert joliet is not None
            joliet_root = self._record(joliet[156:190], rock_ridge=False)
            if joliet_root is None or not joliet_root.is_dir:
                raise self.damaged("its Joliet root directory record is broken")
            self._check_extent(joliet_root, "/")
            root = joliet_root
        self.root = root

    def _check_extent(self, record: Record, path: str) -> None:
        if record.extent * self.block_size + record.size > self.size:
            what = "directory" if record.is_dir else "file"
            raise PlanError(
                f"{self.path}: truncated: {path} runs past the end of the image (its {what} record says "
                f"{record.size} bytes at block {record.extent}); download or copy the image again"
            )

    def _has_rock_ridge(self, root: Record) -> bool:
        """Rock Ridge's SUSP "SP" entry opens the system use area of the root's "." record."""
        head = self._pread(min(root.size, SECTOR), root.extent * self.block_size)
        if len(head) < 34 or head[0] < 34:
            return False
        length, name_length = head[0], head[32]
        start = 33 + name_length + (1 - name_length % 2)
        return head[start : start + 2] == b"SP" and head[start + 4 : start + 6] == b"\xbe\xef" and start < length

    def _record(self, data: bytes, rock_ridge: bool) -> Record | None:
        """One directory record; None when it is too short to be one."""
        if len(data) < 34 or data[0] < 34 or data[0] > len(data):
            return None
        length, name_length, flags = data[0], data[32], data[25]
        if 33 + name_length > length:
            return None
        identifier = data[33 : 33 + name_length]
        extent, size = struct.unpack_from("<I", data, 2)[0], struct.unpack_from("<I", data, 10)[0]
        name = self._iso_name(identifier)
        symlink = None
        if rock_ridge and identifier not in (b"\x00", b"\x01"):
            start = 33 + name_length + (1 - name_length % 2)
            alternate, symlink = self._rock_ridge(data[start:length])
            name = alternate if alternate is not None else name
        return Record(name, extent, size, bool(flags & 0x02), bool(flags & 0x80), symlink)

    def _iso_name(self, identifier: bytes) -> str:
        if identifier in (b"\x00", b"\x01"):
            return "." if identifier == b"\x00" else ".."
        if self.joliet:
            return identifier.decode("utf-16-be", "replace")
        name = identifier.decode("ascii", "replace").split(";")[0]
        return name[:-1] if name.endswith(".") else name

    def _rock_ridge(self, area: bytes) -> tuple[str | None, str | None]:
        """The NM name and SL target in a system use area, following CE continuations (a bounded number)."""
        name: bytes | None = None
        link: list[bytes] | None = None
        continuation = b""
        for _ in range(MAX_CONTINUATIONS):
            index = 0
            next_area = None
            while index + 4 <= len(area):
                signature, length = area[index : index + 2], area[index + 2]
                if length < 4 or index + length > len(area):
                    break
                body = area[index + 4 : index + length]
                if signature == b"NM" and body:
                    name = (name or b"") + (body[1:] if not body[0] & 0x06 else b"")
                elif signature == b"SL" and body:
                    link, continuation = self._symlink_components(body[1:], link or [], continuation)
                elif signature == b"CE" and len(body) >= 24:
                    block, offset, size = (struct.unpack_from("<I", body, at)[0] for at in (0, 8, 16))
                    next_area = (block * self.block_size + offset, min(size, SECTOR))
                elif signature == b"ST":
                    break
                index += length
            if next_area is None:
                break
            area = self._pread(next_area[1], next_area[0])
        # A name that is not UTF-8 is shown and matched with U+FFFD where its bytes are (as config text is read).
        decoded_link = None if link is None else "/".join(part.decode("utf-8", "replace") for part in link)
        return (None if name is None else name.decode("utf-8", "replace")), decoded_link

    @staticmethod
    def _symlink_components(data: bytes, parts: list[bytes], pending: bytes) -> tuple[list[bytes], bytes]:
        index = 0
        while index + 2 <= len(data):
            flags, length = data[index], data[index + 1]
            content = data[index + 2 : index + 2 + length]
            index += 2 + length
            if flags & 0x08:
                parts = [b""]  # the root: an absolute target
            elif flags & 0x02:
                parts.append(b".")
            elif flags & 0x04:
                parts.append(b"..")
            elif flags & 0x01:
                pending += content  # the component goes on in the next one
            else:
                parts.append(pending + content)
                pending = b""
        return parts, pending

    def _children(self, folder: Record):
        """The records of `folder`, read a chunk at a time."""
        if folder.size > MAX_DIRECTORY_BYTES:
            raise self.damaged(f"a directory of {folder.size} bytes")
        start = folder.extent * self.block_size
        done = 0
        while done < folder.size:
            chunk = self._pread(min(CHUNK >> 4, folder.size - done), start + done)
            if not chunk:
                return
            index = 0
            while index < len(chunk):
                length = chunk[index]
                if length == 0:  # the rest of this sector is padding
                    index = (index // SECTOR + 1) * SECTOR
                    continue
                record = self._record(chunk[index : index + length], self.rock_ridge)
                if record is None:
                    break
                yield record
                index += length
            done += len(chunk)

    def find(self, path: str, hops: int = 0) -> tuple[str, Record] | None:
        """(the path as the image names it, its record), following Rock Ridge symlinks inside the image."""
        record = self.root
        exact = "/"
        parts = [part for part in path.split("/") if part]
        for index, part in enumerate(parts):
            if not record.is_dir or part in (".", ".."):
                return None
            match = None
            for child in self._children(record):
                if child.name == part:
                    match = child
                    break
                if match is None and child.name.lower() == part.lower() and child.name not in (".", ".."):
                    match = child  # isolinux and GRUB on a plain ISO 9660 volume ignore case
            if match is None:
                return None
            if match.symlink is not None:
                if hops >= MAX_SYMLINK_HOPS:
                    return None
                origin = f"{self.path}: symlink {exact.rstrip('/')}/{match.name}"
                followed = normalise(match.symlink or "/", exact, origin)
                return self.find(f"{followed}/{'/'.join(parts[index + 1 :])}", hops + 1)
            record = match
            exact = f"{exact.rstrip('/')}/{match.name}"
        return exact, record

    def read_text(self, path: str, limit: int = 1 << 20) -> str | None:
        """A (config) file's text, at most `limit` bytes; None when the image has no such file."""
        found = self.find(path)
        if found is None or found[1].is_dir:
            return None
        record = found[1]
        return self._pread(min(record.size, limit), record.extent * self.block_size).decode("utf-8", "replace")

    def file_size(self, path: str, what: str) -> int:
        """The size of the file at `path`, as its directory record gives it; refuse a missing or damaged one."""
        return self._file(path, what).size

    def _file(self, path: str, what: str) -> Record:
        found = self.find(path)
        if found is None or found[1].is_dir:
            raise PlanError(
                f"{self.path}: {what} {path} is not in the image; the image's boot config names a file "
                "it does not have (choose another --entry, or check the image)"
            )
        record = found[1]
        if record.multi_extent:
            raise PlanError(f"{self.path}: {what} {path} is stored in several extents, which kexec-bin does not read")
        self._check_extent(record, path)
        return record

    def extract(self, path: str, target: str, what: str) -> int:
        """Copy `path` from the image to `target` without holding it in memory; return its size."""
        record = self._file(path, what)
        with open(target, "wb") as out:
            written = _copy_range(self._fd, out.fileno(), record.extent * self.block_size, record.size)
        if written != record.size:
            raise PlanError(
                f"{self.path}: truncated: {path} should be {record.size} bytes and only {written} could be "
                "read; download or copy the image again"
            )
        return written


def _size(descriptor: int, path: str) -> tuple[int, bool]:
    """The bytes of a regular file or a block device (/dev/sr0), and whether it is the device; refuse anything else."""
    mode = os.fstat(descriptor).st_mode
    if stat.S_ISREG(mode):
        return os.fstat(descriptor).st_size, False
    if stat.S_ISBLK(mode):
        return os.lseek(descriptor, 0, os.SEEK_END), True
    raise PlanError(f"{path}: {kind_of(mode)}, not an ISO image file or a block device; give the path of an .iso file")


def _copy_range(source: int, target: int, offset: int, count: int) -> int:
    """Copy `count` bytes at `offset` of `source` to `target` through one reused buffer; return the bytes there were."""
    buffer = memoryview(bytearray(min(CHUNK, max(count, 1))))
    done = 0
    while done < count:
        got = os.preadv(source, [buffer[: min(len(buffer), count - done)]], offset + done)
        if got == 0:
            break
        os.write(target, buffer[:got])
        done += got
    return done
