"""`kexec-bin iso IMAGE`: boot an ISO image from the running system.

Kernel mode (the default, any firmware): read the image's boot configs without mounting it, list
its Linux entries, extract the chosen entry's kernel and initrds into a private folder and load
them with the parameter that lets the booted system find its image again. Whole-image mode
(`--memdisk`, x86 machines booted by BIOS): syslinux's memdisk maps the whole image into memory
and boots its El Torito boot code, for images that are not Linux.

The image is read with pycdlib (the optional extra `kexec-bin[iso]`), only the directory records
and the files needed, never the whole image.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import struct
import tempfile

from . import plan
from .bootconfig import GRUB, LOOPBACK, SYSLINUX, BootEntry, Found, find_entries, inside
from .errors import ConfigError, PlanError
from .plan import PlannedFile
from .wayback import plan_way_back

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # pycdlib is untyped: its directory records (file_identifier, rock_ridge, extent_location...) are Any.
    Record = Any

SECTOR = 2048
# ISO 9660: the primary volume descriptor sits at sector 16 ("\x01CD001"); its volume size
# (in logical blocks, both-endian) at offset 80 and its logical block size at offset 128.
PVD_OFFSET = 16 * SECTOR
CHUNK = 4 << 20
# Live systems that look for their image after boot, and the parameter each takes for its path.
IMAGE_FINDERS = (
    ("boot=live", "findiso"),  # Debian live-boot
    ("boot=casper", "iso-scan/filename"),  # Ubuntu casper
    ("root=live:", "iso-scan/filename"),  # dracut dmsquash-live (Fedora, openSUSE)
    ("archisobasedir=", "img_loop"),  # Arch's archiso
)
# File systems the next system will not find the image on: in memory, or reached over a network or FUSE.
UNREACHABLE_FILESYSTEMS = {
    "tmpfs",
    "ramfs",
    "rootfs",
    "overlay",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "9p",
    "virtiofs",
    "sshfs",
}
MEMDISK = "usr/lib/syslinux/memdisk"
# The x86 wheels carry syslinux-common's memdisk for hosts without it (recipes/bundled.toml).
BUNDLED_MEMDISK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boot", "memdisk")
X86 = {"x86_64", "amd64", "i386", "i486", "i586", "i686"}
PIP_EXTRA = "pip install 'kexec-bin[iso]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="the ISO image file")
    parser.add_argument("--list", action="store_true", help="print the image's Linux boot entries and stop")
    parser.add_argument(
        "--entry",
        metavar="N|TITLE",
        help="the entry to boot: its number in --list or its title (default: the image's own default)",
    )
    parser.add_argument("--append", default="", metavar="PARAMETERS", help="add these to the entry's command line")
    parser.add_argument(
        "--console",
        default="auto",
        metavar="auto|none|DEV[,SPEED]",
        help="console for the next kernel (default auto: the running kernel's)",
    )
    parser.add_argument(
        "--memdisk",
        action="store_true",
        help="boot the whole image through syslinux's memdisk (x86 machines booted by BIOS)",
    )
    parser.add_argument(
        "--root", default="/", help="read /proc, /sys and /usr/lib/syslinux under this folder (default: /)"
    )
    plan.add_mode_options(parser)


def run(args: argparse.Namespace) -> int:
    image = os.path.abspath(args.image)
    check_image(image)
    if args.memdisk:
        import platform

        return plan.carry_out(
            memdisk_plan(image, root=args.root, machine=platform.machine()),
            args.mode,
            exec_after=args.exec_after,
            root=args.root,
        )
    with IsoImage(image) as iso:
        try:
            found = find_entries(iso.read_text, image_path_on_its_filesystem(image))
        except ConfigError as error:
            raise ConfigError(f"{image}: {error}") from None
        if not found.entries:
            raise PlanError(_no_entries(image, found.examined))
        if args.list:
            print(list_text(found))
            return 0
        number, entry, why = choose_entry(found, args.entry, image)
        with tempfile.TemporaryDirectory(prefix="kexec-bin-iso-") as scratch:
            boot_plan = plan_way_back(
                kernel_plan(iso, number, entry, why, found.config == LOOPBACK, scratch, args), args, args.root
            )
            return plan.carry_out(boot_plan, args.mode, exec_after=args.exec_after, root=args.root)


def check_image(path: str) -> None:
    """Refuse a file that is not an ISO 9660 image or is shorter than its volume says."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            file.seek(PVD_OFFSET)
            descriptor = file.read(SECTOR)
    except OSError as error:
        raise PlanError(f"{path}: cannot read the image ({error.strerror}); give the path of an .iso file") from None
    if descriptor[:6] != b"\x01CD001":
        raise PlanError(
            f"{path}: not an ISO 9660 image (no primary volume descriptor at byte {PVD_OFFSET}); "
            "give the path of an .iso file"
        )
    (blocks,) = struct.unpack_from("<I", descriptor, 80)
    (block_size,) = struct.unpack_from("<H", descriptor, 128)
    volume = blocks * block_size
    if size < volume:
        raise PlanError(
            f"{path}: truncated: the image is {size} bytes and its volume {volume}; "
            "download or copy it again and compare its checksum"
        )


class IsoImage:
    """An ISO 9660 image read by path, with the Rock Ridge or Joliet names when it has them."""

    def __init__(self, path: str) -> None:
        try:
            import pycdlib
        except ImportError:
            raise PlanError(f"reading ISO images needs pycdlib: {PIP_EXTRA}") from None
        self.path = path
        self._pycdlib = pycdlib
        self._iso = pycdlib.PyCdlib()
        try:
            self._iso.open(path)
        # pycdlib reports most damage as PyCdlibException, some (short records, bad path tables) as the error it hit.
        except (pycdlib.pycdlibexception.PyCdlibException, IndexError, KeyError, ValueError, struct.error) as error:
            raise PlanError(f"{path}: not a readable ISO 9660 image ({error}); give the path of an .iso file") from None
        self.block_size = self._iso.logical_block_size
        self.facility = (
            "rr_path" if self._iso.has_rock_ridge() else "joliet_path" if self._iso.has_joliet() else "iso_path"
        )

    def __enter__(self) -> IsoImage:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._iso.close()

    def find(self, path: str, hops: int = 0) -> tuple[str, Record] | None:
        """(the name pycdlib knows `path` by, its directory record), following Rock Ridge symlinks inside the image."""
        exact = "/"
        record = None
        parts = [part for part in path.split("/") if part]
        for index, part in enumerate(parts):
            try:
                children = list(self._iso.list_children(**{self.facility: exact}))
            except self._pycdlib.pycdlibexception.PyCdlibException:
                return None
            named = [(self._name(child), child) for child in children]
            # isolinux and GRUB on a plain ISO 9660 volume ignore case; Rock Ridge names are matched exactly first.
            match = next((pair for pair in named if pair[0] == part), None) or next(
                (pair for pair in named if pair[0].lower() == part.lower()), None
            )
            if match is None or match[0] in (".", ".."):
                return None
            name, record = match
            rock_ridge = getattr(record, "rock_ridge", None)
            if rock_ridge is not None and rock_ridge.is_symlink():
                if hops >= 16:
                    return None
                target = rock_ridge.symlink_path().decode("utf-8", "replace")
                rest = "/".join(parts[index + 1 :])
                followed = inside(target, exact, f"{self.path}: symlink {posixpath.join(exact, name)}")
                return self.find(posixpath.join(followed, rest), hops + 1)
            exact = posixpath.join(exact, name)
        return (exact, record) if record is not None else None

    def _name(self, record: Record) -> str:
        identifier = record.file_identifier()
        if self.facility == "rr_path" and record.rock_ridge is not None:
            return record.rock_ridge.name().decode("utf-8", "replace")
        if self.facility == "joliet_path":
            return identifier.decode("utf-16-be", "replace") if identifier not in (b".", b"..") else identifier.decode()
        name = identifier.decode("ascii", "replace").split(";")[0]
        return name[:-1] if name.endswith(".") and name not in (".", "..") else name

    def read_text(self, path: str, limit: int = 1 << 20) -> str | None:
        """A (config) file's text, at most `limit` bytes; None when the image has no such file."""
        found = self.find(path)
        if found is None or found[1].is_dir():
            return None
        with self._iso.open_file_from_iso(**{self.facility: found[0]}) as source:
            return source.read(limit).decode("utf-8", "replace")

    def extract(self, path: str, target: str, what: str) -> int:
        """Copy `path` from the image to `target` without holding it in memory; return its size.

        An ISO 9660 file is one run of blocks (the extent its directory record gives): it is copied
        straight from there, CHUNK bytes at a time.
        """
        found = self.find(path)
        if found is None or found[1].is_dir():
            raise PlanError(
                f"{self.path}: {what} {path} is not in the image; the image's boot config names a file "
                "it does not have (choose another --entry, or check the image)"
            )
        record = found[1]
        expected = record.get_data_length()
        if record.inode is not None and record.data_length != record.inode.data_length:
            # pycdlib shortens a file that runs past the end of the image; its record still says where it ended.
            raise PlanError(
                f"{self.path}: truncated: {path} runs past the end of the image; download or copy the image again"
            )
        with open(self.path, "rb") as source, open(target, "wb") as out:
            written = _copy_range(source.fileno(), out.fileno(), record.extent_location() * self.block_size, expected)
        if written != expected:
            raise PlanError(
                f"{self.path}: truncated: {path} should be {expected} bytes and only {written} could be "
                "read; download or copy the image again"
            )
        return written


def _copy_range(source: int, target: int, offset: int, count: int) -> int:
    """Copy `count` bytes at `offset` of `source` to `target` through one reused buffer; return the bytes there were."""
    buffer = memoryview(bytearray(CHUNK))
    done = 0
    while done < count:
        got = os.preadv(source, [buffer[: min(CHUNK, count - done)]], offset + done)
        if got == 0:
            break
        os.write(target, buffer[:got])
        done += got
    return done


def _no_entries(image: str, examined: list[str]) -> str:
    if not examined:
        searched = ", ".join([LOOPBACK, GRUB, *SYSLINUX])
        return (
            f"{image}: no boot configuration (looked for {searched}); "
            "for an image that is not Linux, try --memdisk on a BIOS machine"
        )
    return (
        f"{image}: {', '.join(examined)} declare no entry that boots a Linux kernel; "
        "for an image that is not Linux, try --memdisk on a BIOS machine"
    )


def list_text(found: Found) -> str:
    """`--list`: every entry with its number, title, kernel, initrds and command line; the default marked."""
    lines = []
    for number, entry in enumerate(found.entries, 1):
        marker = f" (the default: {found.default_reason})" if number - 1 == found.default else ""
        lines.append(f"{number}. {entry.title}{marker}")
        lines.append(f"   kernel:  {entry.kernel}")
        lines.append(f"   initrd:  {' '.join(entry.initrds) or '(none)'}")
        lines.append(f"   cmdline: {entry.cmdline or '(empty)'}")
        lines.append(f"   from:    {entry.config}")
    return "\n".join(lines)


def choose_entry(found: Found, wanted: str | None, image: str) -> tuple[int, BootEntry, str]:
    """The entry `--entry` names (a number from --list, or a title), else the image's default, else the first."""
    entries = found.entries
    if wanted is None:
        if found.default is not None:
            return found.default + 1, entries[found.default], f"the image's default: {found.default_reason}"
        return 1, entries[0], "the first; the image names no default entry that boots Linux"
    if wanted.isdigit() and 1 <= int(wanted) <= len(entries):
        return int(wanted), entries[int(wanted) - 1], "--entry"
    for number, entry in enumerate(entries, 1):
        if entry.title == wanted:
            return number, entry, "--entry"
    raise PlanError(
        f"--entry {wanted!r}: {image} has no such entry; give a number from 1 to {len(entries)} "
        "or a title as `kexec-bin iso IMAGE --list` prints them"
    )


def kernel_plan(
    iso: IsoImage, number: int, entry: BootEntry, why: str, from_loopback: bool, scratch: str, args: argparse.Namespace
) -> plan.BootPlan:
    """Extract `entry`'s kernel and initrds into `scratch` and make the plan that boots them."""
    origin = f"{iso.path}:{{}} (entry {number}, {entry.config})"
    check = "extracted from the image: {} bytes, the size its directory record gives (ISO 9660 has no checksums)"
    kernel_path = os.path.join(scratch, "kernel")
    kernel = PlannedFile(
        kernel_path,
        origin.format(entry.kernel),
        check.format(iso.extract(entry.kernel, kernel_path, f"entry {number}'s kernel")),
    )
    initrds = []
    for index, initrd in enumerate(entry.initrds):
        target = os.path.join(scratch, f"initrd{index}")
        size = iso.extract(initrd, target, f"entry {number}'s initrd")
        initrds.append(PlannedFile(target, origin.format(initrd), check.format(size)))
    decisions = [f"entry {number} of {iso.path}: {entry.title} ({why}; --entry chooses another)"]
    words = [entry.cmdline] if entry.cmdline else []
    warnings = []
    iso_path = image_path_on_its_filesystem(iso.path)
    finder = next((name for marker, name in IMAGE_FINDERS if marker in entry.cmdline), None)
    if from_loopback:
        decisions.append(f"image path: iso_path={iso_path} given to {LOOPBACK}, which puts it on the command line")
    elif finder and f"{finder}=" not in entry.cmdline:
        words.append(f"{finder}={iso_path}")
        decisions.append(f"image path: {finder}={iso_path}, for the live system the entry boots to find its image")
    else:
        decisions.append(
            "image path: none added (the entry's command line uses no live-system scheme that "
            "looks for its image after boot)"
        )
    if from_loopback or finder:
        warnings += reachability_warnings(iso.path, args.root)
    consoles, why = plan.console_parameters(args.console, args.root)
    words += consoles
    decisions.append(why)
    if args.append:
        words.append(args.append)
        decisions.append(f"--append {args.append}")
    return plan.BootPlan(
        title=f"{entry.title} from {iso.path}",
        kernel=kernel,
        initrds=initrds,
        cmdline=" ".join(words),
        decisions=decisions,
        warnings=warnings,
    )


def image_path_on_its_filesystem(path: str) -> str:
    """`path` as seen from the root of the file system holding it: what iso_path/findiso= expect."""
    real = os.path.realpath(path)
    device = os.stat(real).st_dev
    mount = os.path.dirname(real)
    while mount != "/" and os.stat(os.path.dirname(mount)).st_dev == device:
        mount = os.path.dirname(mount)
    if mount == "/" or os.stat(mount).st_dev != device:
        return real
    return "/" + os.path.relpath(real, mount)


def reachability_warnings(path: str, root: str = "/") -> list[str]:
    """Why the next system may not find the image where it is: a file system in memory, on a network, or mapped."""
    real = os.path.realpath(path)
    best: tuple[str, str, str] | None = None
    try:
        with open(os.path.join(root, "proc/self/mountinfo"), encoding="utf-8", errors="replace") as file:
            for line in file:
                fields = line.split()
                if " - " not in line or len(fields) < 5:
                    continue
                mount = fields[4].encode().decode("unicode_escape")
                fstype, source = line.split(" - ", 1)[1].split()[:2]
                if (real == mount or real.startswith(mount.rstrip("/") + "/")) and (
                    best is None or len(mount) > len(best[0])
                ):
                    best = (mount, fstype, source)
    except OSError:
        return []
    if best is None:
        return []
    mount, fstype, source = best
    if fstype in UNREACHABLE_FILESYSTEMS or fstype.startswith("fuse"):
        return [
            f"{path} is on {fstype} ({mount}): the booted system cannot find its image there; "
            "copy the image to a local disk file system (ext4, vfat, ...) and boot it from there"
        ]
    if source.startswith(("/dev/mapper/", "/dev/dm-", "/dev/loop", "/dev/md")):
        return [
            f"{path} is on {source} ({mount}): the booted live system may not open that device "
            "(encrypted, LVM, RAID or loop); copy the image to a plain partition if it does not find it"
        ]
    return []


def memdisk_file(root: str = "/", bundled: str = BUNDLED_MEMDISK) -> PlannedFile:
    """memdisk: the host's syslinux first (the distribution keeps it current), else the wheel's own copy."""
    host = os.path.join(root, MEMDISK)
    if os.path.isfile(host):
        return PlannedFile(
            host, "the host's syslinux (Debian, Ubuntu: syslinux-common)", "the host's own file, not checked further"
        )
    if os.path.isfile(bundled):
        from .resolve import sha256_of

        digest = sha256_of(bundled)
        origin = f"bundled in this wheel ({host} is missing): Debian's syslinux-common, as the wheel's SBOM names it"
        return PlannedFile(bundled, origin, f"sha256 {digest}; the wheel's SBOM lists the one it shipped")
    raise PlanError(
        f"--memdisk: {host} is missing, and this kexec-bin carries no memdisk (only the x86 wheels do); "
        "install it (Debian, Ubuntu: apt install syslinux-common)"
    )


def memdisk_plan(image: str, *, root: str = "/", machine: str) -> plan.BootPlan:
    """The plan that boots the whole `image` through memdisk; refuse where memdisk cannot work."""
    if machine not in X86:
        raise PlanError(
            f"--memdisk: this machine is {machine}, and memdisk is a real-mode x86 program for PC BIOS "
            "machines; boot a Linux image in kernel mode (without --memdisk)"
        )
    if os.path.isdir(os.path.join(root, "sys/firmware/efi")):
        raise PlanError(
            "--memdisk: this machine was booted by UEFI (/sys/firmware/efi exists), so after kexec there "
            "are no BIOS services for memdisk and the image's boot code; boot a Linux image in kernel "
            "mode (without --memdisk), or start the machine in BIOS (CSM) mode"
        )
    memdisk = memdisk_file(root)
    size = os.path.getsize(image)
    available = plan.available_memory(root)
    if available is not None and size > available:
        raise PlanError(
            f"--memdisk: {image} is {plan.size_text(size)} and only {plan.size_text(available)} of memory "
            "is available (MemAvailable in /proc/meminfo); memdisk keeps the whole image in memory: "
            "use kernel mode, or a machine with more memory"
        )
    return plan.BootPlan(
        title=f"{image} as a whole, through memdisk",
        kernel=memdisk,
        initrds=[PlannedFile(image, image, "an ISO 9660 image of the size its volume descriptor gives")],
        cmdline="iso raw",
        syscall="load",
        options=["--real-mode"],
        decisions=[
            "memdisk maps the image into memory as a CD (iso) and boots its El Torito boot code; raw: memdisk "
            "reaches high memory itself instead of through the BIOS (INT 15h), which kexec may have left unusable",
            "kexec_load with --real-mode: only that syscall can enter memdisk through its real-mode entry point",
        ],
    )
