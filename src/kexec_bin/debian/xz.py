"""A multi-block .xz stream decoded on two cores, read in order as one stream of bytes.

Python's lzma decodes on one core, while dpkg-deb (liblzma's threaded decoder) uses every core on
the blocks xz writes when it compresses with threads: Debian's netboot package's data.tar.xz has
seven. Each block is decoded on its own here, as a stream of its own (the file's stream header, the
block, and an index and footer written for it alone: liblzma still checks the block's own check),
two at a time, while the reader takes the output in order. Memory stays bounded: compressed input
is fed a MiB at a time, and each block is decoded into a scratch file (as dpkg-deb -x writes every
file), which the reader removes once it has read it.
"""

from __future__ import annotations

import contextlib
import lzma
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

HEADER_SIZE = 12
FOOTER_MAGIC = b"YZ"
HEADER_MAGIC = b"\xfd7zXZ\x00"
CHUNK = 1 << 20
WORKERS = 2


class Block:
    """One block of the stream: where it starts in the file, and its sizes from the stream's index."""

    def __init__(self, offset: int, unpadded: int, uncompressed: int) -> None:
        self.offset, self.unpadded, self.uncompressed = offset, unpadded, uncompressed


def blocks(file: BinaryIO, start: int, size: int) -> list[Block] | None:
    """The blocks of the single xz stream `size` bytes long at `start` in `file`, or None when it is not
    one plain stream (then the caller decodes it the ordinary way, which reports what is wrong)."""
    if size < 2 * HEADER_SIZE:
        return None
    file.seek(start)
    header = file.read(HEADER_SIZE)
    file.seek(start + size - HEADER_SIZE)
    footer = file.read(HEADER_SIZE)
    if header[:6] != HEADER_MAGIC or footer[10:] != FOOTER_MAGIC or footer[8:10] != header[6:8]:
        return None
    index_size = (struct.unpack("<I", footer[4:8])[0] + 1) * 4
    if index_size > size - 2 * HEADER_SIZE or index_size > 16 << 20:
        return None
    file.seek(start + size - HEADER_SIZE - index_size)
    index = file.read(index_size)
    if index[:1] != b"\x00" or zlib.crc32(index[:-4]) != struct.unpack("<I", index[-4:])[0]:
        return None
    try:
        count, at = _varint(index, 1)
        found, offset = [], start + HEADER_SIZE
        for _ in range(count):
            unpadded, at = _varint(index, at)
            uncompressed, at = _varint(index, at)
            found.append(Block(offset, unpadded, uncompressed))
            offset += (unpadded + 3) & ~3
    except IndexError:
        return None
    if offset != start + size - HEADER_SIZE - index_size:
        return None
    return found


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class ParallelReader:
    """The decoded bytes of `found` blocks of the stream in `path` (header at `start`), in order: `read(n)`.

    Each block is decoded into a scratch file in `scratch` (memory stays at the decoders' own), two
    blocks at a time; the reader takes each file in order once it is complete, and removes it. A
    block's decoding starts when the reader opens the block two before it, so the scratch files never
    take more than three blocks of disk, and no decoder waits on another.
    """

    def __init__(self, path: str, start: int, found: list[Block], scratch: str) -> None:
        self.path, self.start, self.scratch = path, start, scratch
        self.stop = threading.Event()
        self.blocks = found
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="xz")
        self.decoded = [self.pool.submit(self._decode, block) for block in found[:WORKERS]]
        self.current = 0
        self.file: BinaryIO | None = None

    def _decode(self, block: Block) -> str:
        """Decode `block` as a stream of its own into a scratch file; its path."""
        import os
        import tempfile

        with open(self.path, "rb") as source:
            source.seek(self.start)
            header = source.read(HEADER_SIZE)
            body = b"\x00" + _encode_varint(1) + _encode_varint(block.unpadded) + _encode_varint(block.uncompressed)
            body += b"\x00" * (-len(body) % 4)
            index = body + struct.pack("<I", zlib.crc32(body))
            tail = struct.pack("<I", len(index) // 4 - 1) + header[6:8]
            footer = struct.pack("<I", zlib.crc32(tail)) + tail + FOOTER_MAGIC
            decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ)
            descriptor, name = tempfile.mkstemp(dir=self.scratch, prefix=".xz-block-")
            try:
                with os.fdopen(descriptor, "wb") as out:
                    out.write(decoder.decompress(header))
                    source.seek(block.offset)
                    left = (block.unpadded + 3) & ~3
                    while left:
                        if self.stop.is_set():
                            raise EOFError("stopped")
                        data = source.read(min(CHUNK, left))
                        if not data:
                            raise EOFError("the xz stream ends inside a block")
                        left -= len(data)
                        out.write(decoder.decompress(data, CHUNK))
                        while not decoder.needs_input and not decoder.eof:
                            out.write(decoder.decompress(b"", CHUNK))
                    out.write(decoder.decompress(index + footer))
                if not decoder.eof:
                    raise EOFError("an xz block did not end where the stream's index says")
            except BaseException:
                os.unlink(name)
                raise
            return name

    def read(self, count: int = -1) -> bytes:
        import os

        while self.current < len(self.decoded):
            if self.file is None:
                self.file = open(self.decoded[self.current].result(), "rb")  # noqa: SIM115 - closed below
                following = self.current + WORKERS
                if following < len(self.blocks):
                    self.decoded.append(self.pool.submit(self._decode, self.blocks[following]))
            data = self.file.read(count)
            if data:
                return data
            self.file.close()
            os.unlink(self.file.name)
            self.file, self.current = None, self.current + 1
        return b""

    def close(self) -> None:
        """Stop the decoders and remove every scratch file."""
        import os

        self.stop.set()
        self.pool.shutdown(wait=True)
        opened = self.file is not None
        if self.file is not None:
            self.file.close()
            os.unlink(self.file.name)
        for future in self.decoded[self.current + opened :]:
            if not future.cancelled() and future.exception() is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(future.result())
