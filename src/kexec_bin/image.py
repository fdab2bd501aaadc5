"""What a kernel image file is, from the magic numbers its formats put in their headers.

A small check, not a parser: enough to refuse a file that is no kernel (a config, an initrd, a
truncated download) before kexec is asked to load it, and to name the format in the plan.
kexec-tools itself does the real probing when it loads.
"""

from __future__ import annotations

# Compressed data (a vmlinuz that kexec-tools decompresses before probing what is inside).
_COMPRESSIONS = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x89LZO", "lzo"),
)
# The bytes read: enough for s390's entry point marker at 0x10008.
_HEADER_BYTES = 0x10010


class KernelImage:
    """A recognised kernel image: its format and, when the header says, the kernel release."""

    __slots__ = ("format", "release")

    def __init__(self, format: str, release: str | None = None) -> None:
        self.format, self.release = format, release

    def __repr__(self) -> str:
        return f"KernelImage({self.format!r}, {self.release!r})"


def identify(path: str) -> KernelImage | None:
    """The kernel format of the file at `path`, or None when no known kernel header is there.

    Raises OSError when the file cannot be read.
    """
    with open(path, "rb") as file:
        head = file.read(_HEADER_BYTES)
    if head[0x202:0x206] == b"HdrS":  # x86 boot protocol: the setup header's magic
        protocol = int.from_bytes(head[0x206:0x208], "little")
        return KernelImage(
            f"x86 bzImage (boot protocol {protocol >> 8}.{protocol & 0xFF:02d})", _x86_release(path, head)
        )
    if head[:4] == b"\x7fELF":
        return KernelImage("ELF (vmlinux)")
    if head[0x38:0x3C] == b"ARM\x64":
        return KernelImage("arm64 Image")
    if head[0x38:0x3C] == b"RSC\x05":
        return KernelImage("riscv64 Image")
    if head[:2] == b"MZ" and head[4:8] == b"zimg":
        # EFI zboot: a PE stub around a compressed Image; the name of the compression at 0x18.
        compression = head[0x18:0x20].rstrip(b"\0").decode("ascii", "replace")
        return KernelImage(f"EFI zboot image ({compression}-compressed)")
    if head[0x24:0x28] == b"\x18\x28\x6f\x01":
        return KernelImage("ARM zImage")
    if head[0x10008:0x1000E] == b"S390EP":  # s390's table of kernel entry points, a fixed ABI
        return KernelImage("s390 image")
    for magic, name in _COMPRESSIONS:
        if head.startswith(magic):
            return KernelImage(f"{name}-compressed (kexec-tools unpacks it and checks the kernel inside)")
    if head[:2] == b"MZ":
        return KernelImage("PE/EFI application (EFI stub kernel)")
    return None


def _x86_release(path: str, head: bytes) -> str | None:
    """The release from a bzImage's kernel_version string ("6.1.0-18-amd64 (debian-kernel@…) #1 …")."""
    pointer = int.from_bytes(head[0x20E:0x210], "little")
    if not pointer:
        return None
    with open(path, "rb") as file:
        file.seek(pointer + 0x200)
        text = file.read(256).split(b"\0", 1)[0].decode("ascii", "replace")
    return text.split(" ", 1)[0] or None
