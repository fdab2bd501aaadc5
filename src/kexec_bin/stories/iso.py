"""`kexec-bin iso IMAGE`: boot an ISO image from the running system.

Kernel mode (the default, any firmware): read the image's boot configs without mounting it, list
its Linux entries, extract the chosen entry's kernel and initrds into a private folder and load
them with the parameter that lets the booted system find its image again. Whole-image mode
(`--memdisk`, x86 machines booted by BIOS): syslinux's memdisk maps the whole image into memory
and boots its El Torito boot code, for images that are not Linux.

The image is read by `isofs` (the standard library), only the directories on the way to the configs
and files needed, never the whole image; its menus by the `menus` readers, within one `Budget`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from dataclasses import dataclass

from .. import plan
from .._architectures import X86
from ..errors import ConfigError, PlanError
from ..isofs import PVD_OFFSET, SECTOR, IsoImage
from ..menus import Budget, Entry, Menu, grub, normalise, syslinux, without_device
from ..plan import PlannedFile
from ..plan.model import shown
from ..read import read_capped
from ..wayback import plan_way_back

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..menus import Reader

__all__ = ["PVD_OFFSET", "SECTOR", "IsoImage", "find_entries"]

LOOPBACK = "/boot/grub/loopback.cfg"
GRUB = "/boot/grub/grub.cfg"
# isolinux's own search order for its config (syslinux 6, core/fs/iso9660 and doc/isolinux.txt).
SYSLINUX = (
    "/boot/isolinux/isolinux.cfg",
    "/isolinux/isolinux.cfg",
    "/isolinux.cfg",
    "/boot/syslinux/syslinux.cfg",
    "/syslinux/syslinux.cfg",
    "/syslinux.cfg",
)
# GRUB device prefixes that name the image itself when GRUB boots it (from a CD or through `loopback loop`).
IMAGE_DEVICES = {"", "loop", "cd", "cd0"}
# An entry's initrds, and all its files together, past which it is no boot entry but a way to fill a disk.
MAX_INITRDS = 32
MAX_EXTRACTED_BYTES = 4 << 30
# /proc/self/mountinfo of a machine with thousands of mounts (containers) stays below this.
MAX_MOUNTINFO_BYTES = 16 << 20
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
BUNDLED_MEMDISK = "boot/memdisk"


EXAMPLES = """examples:
  kexec-bin iso debian-13-amd64-netinst.iso --list          the image's Linux boot entries, its default marked
  kexec-bin iso debian-13-amd64-netinst.iso --entry 2 --append priority=low --yes
  kexec-bin iso ipxe.iso --memdisk --yes                    the whole image through memdisk (x86, BIOS)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
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
    plan.add_story_options(parser)


def run(args: argparse.Namespace) -> int:
    image = os.path.abspath(args.image)
    with IsoImage(image) as iso:
        if args.memdisk:
            import platform

            boot_plan = plan_way_back(
                memdisk_plan(image, root=args.root, machine=platform.machine()), args, args.root, linux=False
            )
            return plan.carry_out(boot_plan, args.mode, exec_after=args.exec_after, root=args.root)
        # Where the next system finds the image (iso_path=, findiso=); a disc's live system scans for it.
        iso_path = "" if iso.device else image_path_on_its_filesystem(image)
        try:
            found = find_entries(iso.read_text, iso_path or None)
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
                kernel_plan(iso, iso_path, number, entry, why, found.config == LOOPBACK, scratch, args),
                args,
                args.root,
            )
            return plan.carry_out(boot_plan, args.mode, exec_after=args.exec_after, root=args.root)


@dataclass
class Found:
    """What the search found: the config the entries come from (None: none at all) and its Linux entries."""

    config: str | None
    entries: list[Entry]
    examined: list[str]
    default: int | None = None
    """The index of the entry the boot loader would boot without a choice (None: the image does not say)."""
    default_reason: str = ""


def find_entries(read: Reader, iso_path: str | None) -> Found:
    """The Linux boot entries of the image that `read` reads, searched as a boot loader booting it would.

    loopback.cfg first (GRUB's convention for booting an image from a file; it receives `iso_path`,
    and is skipped for a disc, `iso_path` None), then grub.cfg, then the isolinux/syslinux configs in
    isolinux's own order. One budget bounds the work of the whole search.
    """
    budget = Budget()
    examined = []
    first_config = None
    for path in (*([LOOPBACK] if iso_path is not None else []), GRUB, *SYSLINUX):
        if path in (LOOPBACK, GRUB):
            variables = {"iso_path": iso_path} if path == LOOPBACK and iso_path is not None else {}
            menu = grub.read_menu(read, in_image, path, variables=variables, budget=budget)
        else:
            menu = syslinux.read_menu(read, in_image, path, budget=budget)
        if menu is None:
            continue
        examined.append(path)
        first_config = first_config or path
        entries = [entry for entry in menu.entries if entry.kernel]
        if entries:
            return Found(path, entries, examined, *_default(menu, entries, path))
    return Found(first_config, [], examined)


def in_image(word: str, device: str, base: str, origin: str) -> str:
    """A config's path as a path in the image; refuse one on another device or above the image's root."""
    if device not in IMAGE_DEVICES:
        raise ConfigError(
            f"{origin}: {word!r} is on another device ({device}), not in the image; "
            "only files in the image can be booted"
        )
    return normalise(without_device(word), base, origin)


def _default(menu: Menu, entries: list[Entry], config: str) -> tuple[int | None, str]:
    """The Linux entry the boot loader boots when nobody chooses.

    GRUB's `default` (a position, an --id, a title, or a `>` path of them); syslinux's MENU DEFAULT
    in the top menu, else ONTIMEOUT, else DEFAULT.
    """
    marked = [index for index, entry in enumerate(entries) if entry.marked_default]
    if marked:
        return marked[0], f"MENU DEFAULT in {entries[marked[0]].config}"
    if not menu.default:
        return None, ""
    if menu.default_source == "set default=":
        chosen, _ = grub.select(menu.entries, menu.default)
    else:
        chosen = syslinux.select(entries, menu.default)
    index = next((index for index, entry in enumerate(entries) if entry is chosen), None)
    return (index, f"{menu.default_source} {menu.default} in {config}") if index is not None else (None, "")


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
    return "\n".join(shown(line) for line in lines)  # an image's text, escape sequences and all


def choose_entry(found: Found, wanted: str | None, image: str) -> tuple[int, Entry, str]:
    """The entry `--entry` names (a number from --list, a title or a syslinux label), else the image's default,
    else the first."""
    entries = found.entries
    if wanted is None:
        if found.default is not None:
            return found.default + 1, entries[found.default], f"the image's default: {found.default_reason}"
        return 1, entries[0], "the first; the image names no default entry that boots Linux"
    if wanted.isascii() and wanted.isdigit() and len(wanted) < 10 and 1 <= int(wanted) <= len(entries):
        return int(wanted), entries[int(wanted) - 1], "--entry"
    for matches in (lambda entry: entry.title == wanted, lambda entry: wanted in entry.names):
        for number, entry in enumerate(entries, 1):
            if matches(entry):
                return number, entry, "--entry"
    raise PlanError(
        f"--entry {wanted!r}: {image} has no such entry; give a number from 1 to {len(entries)}, "
        "a title as `kexec-bin iso IMAGE --list` prints them, or a syslinux label"
    )


def kernel_plan(
    iso: IsoImage,
    iso_path: str,
    number: int,
    entry: Entry,
    why: str,
    from_loopback: bool,
    scratch: str,
    args: argparse.Namespace,
) -> plan.BootPlan:
    """Extract `entry`'s kernel and initrds into `scratch` and make the plan that boots them; `iso_path`
    is the image as the next system's file system holds it ("" for a disc).

    A dry run extracts the kernel only (the plan checks it: its format, its signature under Secure
    Boot) and shows the initrds at the sizes their directory records give: a plan writes no more
    than it needs to show."""
    # From a disc, a live system finds its medium itself (it scans the block devices).
    finder = None if iso.device else next((name for marker, name in IMAGE_FINDERS if marker in entry.cmdline), None)
    if from_loopback or finder:
        _check_findable(iso_path)
    loads = args.mode != plan.DRY_RUN
    _check_room(iso, number, entry, scratch, with_initrds=loads)
    origin = f"{iso.path}:{{}} (entry {number}, {entry.config})"
    check = "extracted from the image: {} bytes, the size its directory record gives (ISO 9660 has no checksums)"
    kernel_path = os.path.join(scratch, "kernel")
    kernel = PlannedFile(
        kernel_path,
        origin.format(entry.kernel),
        check.format(iso.extract(entry.kernel, kernel_path, f"entry {number}'s kernel")),
        temporary=True,
    )
    initrds = []
    for index, initrd in enumerate(entry.initrds):
        target, what = os.path.join(scratch, f"initrd{index}"), f"entry {number}'s initrd"
        if loads:
            size = iso.extract(initrd, target, what)
            initrds.append(PlannedFile(target, origin.format(initrd), check.format(size), temporary=True))
        else:
            size = iso.file_size(initrd, what)
            shown_only = f"not extracted for a dry run: {size} bytes, the size its directory record gives"
            initrds.append(PlannedFile(target, origin.format(initrd), shown_only, temporary=True, known_size=size))
    decisions = [f"entry {number} of {iso.path}: {entry.title} ({why}; --entry chooses another)"]
    words = [entry.cmdline] if entry.cmdline else []
    warnings = []
    if from_loopback:
        decisions.append(f"image path: iso_path={iso_path} given to {LOOPBACK}, which puts it on the command line")
    elif finder and f"{finder}=" not in entry.cmdline:
        words.append(f"{finder}={iso_path}")
        decisions.append(f"image path: {finder}={iso_path}, for the live system the entry boots to find its image")
    elif iso.device:
        decisions.append(f"image path: none added ({iso.path} is a disc, which the live system finds itself)")
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


def _check_findable(iso_path: str) -> None:
    """Refuse an image path that the booted system's command line would cut: live systems split it at spaces."""
    if any(char.isspace() or char in "\"'\\" or not char.isprintable() for char in iso_path):
        raise PlanError(
            f"{iso_path!r}: the booted live system would not find its image at this path: it reads the path "
            "from its command line, which is split at spaces (and quotes and control characters break it); "
            "move or rename the image to a path without them"
        )


def _check_room(iso: IsoImage, number: int, entry: Entry, scratch: str, *, with_initrds: bool = True) -> None:
    """Refuse, before anything is extracted, an entry whose files are too many or too large to write
    (`with_initrds`: False for a dry run, which writes the kernel only)."""
    if len(entry.initrds) > MAX_INITRDS:
        raise PlanError(
            f"{iso.path}: entry {number} names {len(entry.initrds)} initrds; kexec-bin loads at most "
            f"{MAX_INITRDS} (the image's boot config is broken or hostile; choose another --entry)"
        )
    what = f"entry {number}'s"
    kernel = iso.file_size(entry.kernel, f"{what} kernel")
    initrds = sum(iso.file_size(initrd, f"{what} initrd") for initrd in entry.initrds)
    # Several initrds are joined into one more file when they are loaded.
    needed = kernel + initrds * (2 if len(entry.initrds) > 1 else 1)
    if needed > MAX_EXTRACTED_BYTES:
        raise PlanError(
            f"{iso.path}: {what} files need {plan.size_text(needed)}, more than the "
            f"{plan.size_text(MAX_EXTRACTED_BYTES)} kexec-bin extracts for one kernel; choose another --entry"
        )
    written = needed if with_initrds else kernel
    folder = os.path.dirname(scratch)
    free = shutil.disk_usage(scratch).free
    if written > free:
        raise PlanError(
            f"{iso.path}: {what} files need {plan.size_text(written)} and {folder} has {plan.size_text(free)} "
            "free; set TMPDIR to a folder with room"
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
    mountinfo = read_capped(os.path.join(root, "proc/self/mountinfo"), MAX_MOUNTINFO_BYTES)
    if mountinfo is None:
        return []
    for line in mountinfo.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5 or len(line.split(" - ", 1)[1].split()) < 2:
            continue
        mount = fields[4].encode().decode("unicode_escape", "replace")
        fstype, source = line.split(" - ", 1)[1].split()[:2]
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) and (best is None or len(mount) > len(best[0])):
            best = (mount, fstype, source)
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
    from ..resolve import carried

    checked = carried(bundled)
    if checked:
        bundled, digest = checked
        origin = f"bundled in this wheel ({host} is missing): Debian's syslinux-common, as the wheel's SBOM names it"
        return PlannedFile(bundled, origin, f"sha256 {digest}, the one this wheel was built with (its SBOM lists it)")
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
    with open(image, "rb") as file:  # the end of a disc (/dev/sr0) too, whose file size is 0
        size = file.seek(0, os.SEEK_END)
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
