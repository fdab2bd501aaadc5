"""The kernel this machine would boot next, found the way its boot loader would find it.

In order, each source named in the result: GRUB's default entry (grub.cfg's `set default=`, with
grubenv's next_entry and saved_entry), else the Boot Loader Specification entries systemd-boot
would list first (with loader.conf's `default`), else the newest /boot/vmlinuz-* by Debian's version
order (or the /vmlinuz link), else the running kernel's own files. A kernel whose modules are
missing from /lib/modules is skipped, and the result says why.

The menus are read by the `menus` package (GRUB's script run as GRUB runs it, with grubenv loaded
by its `load_env`; Boot Loader Specification entries). Everything is read under `root` as
untrusted input, through `read_regular` (capped; a FIFO or device is refused, never waited on):
symbolic links are followed as if `root` were `/` (a chroot's view), so no path in a configuration
file can lead outside it.
"""

from __future__ import annotations

import functools
import os
import re

from .errors import BootError, ConfigError, UsageError
from .menus import Menu, bls, grub, normalise, without_device
from .menus.bls import compare_versions
from .read import read_regular

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .menus import Reader

__all__ = [
    "BootError",
    "Candidate",
    "Choice",
    "compare_versions",
    "inside",
    "installed_releases",
    "modules_missing",
    "named_kernel",
    "next_kernel",
]

GRUB_CONFIGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg")
# A boot menu file larger than this is no boot menu (update-grub writes tens of KiB).
MAX_MENU_BYTES = 1 << 20
# The names distributions give a kernel's initrd, for a kernel release.
INITRD_NAMES = ("/boot/initrd.img-{}", "/boot/initramfs-{}.img", "/boot/initrd-{}")
_MAX_LINKS = 40


class Candidate:
    """A kernel the boot loader would start: paths as seen on the machine, and where it was found
    (`source`, for the plan: "GRUB default entry 'Debian GNU/Linux' in /boot/grub/grub.cfg")."""

    __slots__ = ("initrds", "kernel", "release", "source")

    def __init__(self, kernel: str, initrds: tuple[str, ...], release: str | None, source: str) -> None:
        self.kernel, self.initrds, self.release, self.source = kernel, initrds, release, source

    def __repr__(self) -> str:
        return f"Candidate({self.kernel!r}, {self.initrds!r}, {self.release!r}, {self.source!r})"


class Choice:
    """The kernel chosen, and one line for each kernel or source passed over (and why) on the way."""

    __slots__ = ("candidate", "notes")

    def __init__(self, candidate: Candidate, notes: list[str] | None = None) -> None:
        self.candidate, self.notes = candidate, [] if notes is None else notes


def next_kernel(root: str = "/") -> Choice:
    """The kernel this machine boots next; raise `BootError` when there is none or its files are missing."""
    notes: list[str] = []
    for source in (grub_default, bls_default, newest_installed, running_kernel):
        for candidate in source(root, notes):
            missing = modules_missing(root, candidate.release)
            if missing:
                notes.append(f"skipped {candidate.kernel} ({candidate.source}): {missing}")
                continue
            return Choice(candidate, notes)
    raise BootError(
        "no kernel found: no GRUB or Boot Loader Specification entry, no /boot/vmlinuz-*, no /vmlinuz, "
        "and the running kernel's image is not in /boot or /lib/modules"
        + "".join(f"\n  {line}" for line in notes)
        + "\n  install a kernel package, or name the kernel with --kernel PATH and --initrd PATH"
    )


def modules_missing(root: str, release: str | None) -> str | None:
    """Why `release`'s modules are not installed, or None when /lib/modules/<release> is there (or unknown)."""
    if release is None:
        return None
    folder = f"/lib/modules/{release}"
    if os.path.isdir(inside(root, folder)):
        return None
    return f"its modules are missing ({folder} does not exist): it would boot without drivers"


def named_kernel(root: str, name: str) -> Candidate:
    """The kernel a user names: a path to an image, or a release installed as /boot/vmlinuz-<release>."""
    if "/" in name:
        path, source = (name if root != "/" else os.path.abspath(name)), f"--kernel {name}"
    else:
        path = next(
            (
                f"/boot/{prefix}-{name}"
                for prefix in ("vmlinuz", "vmlinux")
                if os.path.exists(inside(root, f"/boot/{prefix}-{name}"))
            ),
            f"/boot/vmlinuz-{name}",
        )
        source = f"--kernel {name}: /boot's kernel of that release"
    if not os.path.isfile(inside(root, path)):
        installed = ", ".join(installed_releases(root)) or "none"
        raise BootError(
            f"--kernel {name}: {path} does not exist; give a kernel image's path or an installed "
            f"release (in /boot: {installed})"
        )
    release = _release_from_name(path)
    return Candidate(path, _initrd_for(root, release), release, source)


def installed_releases(root: str) -> list[str]:
    """The releases of /boot/vmlinuz-* and /boot/vmlinux-*, newest first by Debian's version order."""
    try:
        names = os.listdir(inside(root, "/boot"))
    except OSError:
        return []
    releases = {
        name.split("-", 1)[1]
        for name in names
        if re.fullmatch(r"vmlinu[xz]-.+", name) and not name.endswith((".old", ".bak", ".sig"))
    }
    return sorted(releases, key=functools.cmp_to_key(compare_versions), reverse=True)


# GRUB and the Boot Loader Specification, read by the menus package through this machine's files


def grub_menu(root: str) -> tuple[str, Menu, dict[str, str]] | None:
    """The first grub.cfg under `root`, read as GRUB runs it (with grubenv beside it): (its path, its menu,
    grubenv's variables); None without a grub.cfg."""
    read = _reader(root)
    for config in GRUB_CONFIGS:
        if not os.path.lexists(inside(root, config)):
            continue  # grubenv is read only beside a grub.cfg that uses it
        folder = os.path.dirname(config)
        # GRUB's own variables that grub.cfg tests: where it found its files, and the firmware it runs on.
        platform = "efi" if os.path.isdir(inside(root, "/sys/firmware/efi")) else "pc"
        variables = {"prefix": folder, "grub_platform": platform}
        try:
            environment = grub.grubenv(read(f"{folder}/grubenv") or "")
            menu = grub.read_menu(read, _grub_resolver, config, variables=variables, environment=environment)
        except ConfigError as error:
            raise BootError(str(error)) from None
        if menu is not None:
            return config, menu, environment
    return None


def grub_default(root: str, notes: list[str], found: tuple[str, Menu, dict[str, str]] | None = None) -> list[Candidate]:
    """GRUB's default entry, as grub.cfg with grubenv selects it; [] without a grub.cfg.

    `found`: `grub_menu(root)` when the caller has read it already (the way back needs its entries too).
    """
    found = found or grub_menu(root)
    if found is None:
        return []
    config, menu, environment = found
    if not menu.entries:
        notes.append(f"{config} has no menu entry")
        return []
    default, why = _grub_default_value(menu.default, environment)
    entry, path = grub.select(menu.entries, default)
    if entry is None:
        # GRUB itself falls back to the first entry when the default names none.
        notes.append(f"GRUB default {default!r} ({why}) names no entry in {config}: GRUB boots the first entry")
        entry, path = grub.select(menu.entries, "0")
    if entry is None or not entry.kernel:
        raise BootError(
            f"GRUB's default entry {' > '.join(path) or default!r} in {config} starts no Linux kernel "
            "(a chainloader, firmware setup or empty submenu): set GRUB_DEFAULT to a Linux entry and "
            "run update-grub, or name the kernel with --kernel"
        )
    kernel = _grub_path(root, entry.kernel, config)
    initrds = tuple(_grub_path(root, initrd, config) for initrd in entry.initrds)
    return [
        Candidate(
            kernel, initrds, _release_from_name(kernel), f"GRUB default entry {' > '.join(path)!r} in {config} ({why})"
        )
    ]


def _grub_default_value(default: str, environment: dict[str, str]) -> tuple[str, str]:
    """The default grub.cfg left set, and why: grubenv's next_entry (grub-reboot), its saved_entry, or its own."""
    if not default:
        return "0", "GRUB's own default, the first entry"
    if default == environment.get("next_entry"):
        return default, "grubenv's next_entry, set by grub-reboot"
    if default == environment.get("saved_entry"):
        return default, "grubenv's saved_entry, set by grub-set-default"
    return default, "grub.cfg's set default="


def _grub_resolver(word: str, device: str, base: str, origin: str) -> str:
    """A GRUB path on this machine, whatever device it names: GRUB reads it from one of this machine's disks."""
    return normalise(without_device(word), base, origin)


def _grub_path(root: str, path: str, config: str) -> str:
    """A GRUB path as seen on the machine: under /boot when /boot is its own partition."""
    if os.path.lexists(inside(root, path)):
        return path
    if os.path.lexists(inside(root, "/boot" + path)):
        return "/boot" + path
    raise BootError(
        f"{config}'s default entry names {path}, which does not exist: run update-grub "
        "(grub2-mkconfig) to rewrite it, or name the kernel with --kernel"
    )


def bls_default(root: str, notes: list[str]) -> list[Candidate]:
    """The entry systemd-boot would start: loader.conf's `default` pattern, else the first in its order."""
    read = _reader(root)
    try:
        entries, passed_over = bls.read_entries(read, lambda folder: _listdir(root, folder))
        pattern, config = bls.loader_default(read) if entries else ("", "")
    except ConfigError as error:
        raise BootError(str(error)) from None
    notes += passed_over
    if not entries:
        return []
    chosen = bls.select(entries, pattern)
    why = f"{config}'s default {pattern}" if chosen else "the first in systemd-boot's order"
    entry = chosen or entries[0]
    kernel = _bls_path(root, entry.kernel, entry.config)
    initrds = tuple(_bls_path(root, initrd, entry.config) for initrd in entry.initrds)
    release = entry.version or _release_from_name(kernel)
    return [Candidate(kernel, initrds, release, f"Boot Loader Specification entry {entry.config} ({why})")]


def _bls_path(root: str, full: str, entry: str) -> str:
    """An entry's path (already under the partition holding the entries), refused when it is missing."""
    if not os.path.lexists(inside(root, full)):
        place = next(place for place in sorted(bls.PLACES, key=len, reverse=True) if full.startswith(place + "/"))
        raise BootError(
            f"{entry} names {full.removeprefix(place)}, which does not exist ({full}): reinstall that kernel "
            "(kernel-install add) or remove the entry"
        )
    return full


# /boot as installed


def newest_installed(root: str, notes: list[str]) -> list[Candidate]:
    """Every /boot/vmlinuz-<release>, newest first by Debian's version order; else the /vmlinuz link."""
    releases = installed_releases(root)
    found = []
    for release in releases:
        names = (f"/boot/vmlinuz-{release}", f"/boot/vmlinux-{release}")
        kernel = next((path for path in names if os.path.isfile(inside(root, path))), None)
        if kernel is None:
            notes.append(f"skipped {' and '.join(names)}: not a file (a dangling symbolic link?)")
            continue
        found.append(
            Candidate(
                kernel, _initrd_for(root, release), release, "the newest kernel in /boot, by Debian's version order"
            )
        )
    if found:
        return found
    for link, initrd in (("/vmlinuz", "/initrd.img"), ("/boot/vmlinuz", "/boot/initrd.img")):
        target = inside(root, link)
        if os.path.exists(target):
            linked_release = _release_from_name(target)
            initrds = (initrd,) if os.path.exists(inside(root, initrd)) else _initrd_for(root, linked_release)
            return [Candidate(link, initrds, linked_release, f"the {link} link")]
    return []


def running_kernel(root: str, notes: list[str]) -> list[Candidate]:
    """The running kernel's own image, where Fedora and Arch keep it (/lib/modules/<release>/vmlinuz) or in /boot."""
    from .kernel import Kernel

    release = Kernel(root).release()
    if not release:
        return []
    for path in (f"/lib/modules/{release}/vmlinuz", f"/boot/vmlinuz-{release}"):
        if os.path.exists(inside(root, path)):
            return [Candidate(path, _initrd_for(root, release), release, f"the running kernel's image ({release})")]
    return []


def _initrd_for(root: str, release: str | None) -> tuple[str, ...]:
    """The initrd installed for `release`, () when there is none."""
    for name in INITRD_NAMES:
        path = name.format(release)
        if release and os.path.exists(inside(root, path)):
            return (path,)
    return ()


def _reader(root: str) -> Reader:
    """The menus' reader on this machine: a file's text, None when absent; a FIFO or device is refused
    (ConfigError, as the menu readers raise: a GRUB `[ -d PATH ]` test takes it as false, and the
    callers here name it as a BootError)."""

    def read(path: str) -> str | None:
        full = inside(root, path)
        if not os.path.lexists(full):
            return None
        try:
            return read_regular(full, MAX_MENU_BYTES, "boot menu").decode("utf-8", "replace")
        except UsageError as error:
            raise ConfigError(f"{error}; kexec-bin reads boot menus only from regular files") from None

    return read


def _listdir(root: str, folder: str) -> list[str]:
    try:
        return os.listdir(inside(root, folder))
    except OSError:
        return []


def _release_from_name(path: str) -> str | None:
    """The kernel release in a file name such as vmlinuz-6.1.0-18-amd64 (None for a bare 'vmlinuz')."""
    match = re.fullmatch(r"(?:vmlinu[xz]|Image|bzImage)-(.+)", os.path.basename(path))
    return match.group(1) if match else None


# Paths under root


def inside(root: str, path: str) -> str:
    """`path` as the machine under `root` sees it, with every symbolic link resolved within `root`.

    An absolute link target starts again at `root` and `..` stops at it, as in a chroot, so the
    result is always under `root`. A missing component ends the resolution (the rest is appended).
    """
    root = os.path.abspath(root)
    parts = [part for part in path.split("/") if part and part != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            links += 1
            if links > _MAX_LINKS:
                raise BootError(f"{path}: too many levels of symbolic links under {root}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [piece for piece in target.split("/") if piece and piece != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)
