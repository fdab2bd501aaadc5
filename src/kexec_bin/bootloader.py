"""The kernel this machine would boot next, found the way its boot loader would find it.

In order, each source named in the result: GRUB's default entry (grub.cfg's `set default=`, with
grubenv's next_entry and saved_entry), else the Boot Loader Specification entries systemd-boot
would list first (with loader.conf's `default`), else the newest /boot/vmlinuz-* by Debian's version
order (or the /vmlinuz link), else the running kernel's own files. A kernel whose modules are
missing from /lib/modules is skipped, and the result says why.

Everything is read under `root` as untrusted input: symbolic links are followed as if `root` were
`/` (a chroot's view), so no path in a configuration file can lead outside it.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import shlex
from dataclasses import dataclass, field

from .errors import BootError

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
BLS_PLACES = ("/boot", "/efi", "/boot/efi")
# The names distributions give a kernel's initrd, for a kernel release.
INITRD_NAMES = ("/boot/initrd.img-{}", "/boot/initramfs-{}.img", "/boot/initrd-{}")
_MAX_LINKS = 40


@dataclass(frozen=True)
class Candidate:
    """A kernel the boot loader would start: paths as seen on the machine, and where it was found."""

    kernel: str
    initrds: tuple[str, ...]
    release: str | None
    source: str
    """Where it came from, for the plan ("GRUB default entry 'Debian GNU/Linux' in /boot/grub/grub.cfg")."""


@dataclass
class Choice:
    """The kernel chosen, and one line for each kernel or source passed over (and why) on the way."""

    candidate: Candidate
    notes: list[str] = field(default_factory=list)


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


# GRUB


@dataclass(frozen=True)
class _MenuEntry:
    title: str
    entry_id: str | None
    kernel: str | None = None
    initrds: tuple[str, ...] = ()
    children: tuple[_MenuEntry, ...] = ()

    @property
    def submenu(self) -> bool:
        return self.kernel is None and bool(self.children)


def grub_default(root: str, notes: list[str]) -> list[Candidate]:
    """GRUB's default entry, as grub.cfg with grubenv selects it; [] without a grub.cfg."""
    for config in GRUB_CONFIGS:
        text = _read(root, config)
        if text is not None:
            break
    else:
        return []
    entries = _grub_entries(text)
    if not entries:
        notes.append(f"{config} has no menu entry")
        return []
    environment = _grubenv(_read(root, os.path.join(os.path.dirname(config), "grubenv")) or "")
    default, why = _grub_default_value(text, environment)
    entry, path = _grub_select(entries, default)
    if entry is None:
        # GRUB itself falls back to the first entry when the default names none.
        notes.append(f"GRUB default {default!r} ({why}) names no entry in {config}: GRUB boots the first entry")
        entry, path = _grub_select(entries, "0")
    if entry is None or entry.kernel is None:
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


def _grub_entries(text: str) -> list[_MenuEntry]:
    """The menu as nested entries: the kernel and initrds of each menuentry, the children of each submenu."""
    stack: list[list] = [["", None, [], None, []]]  # title, id, children, kernel, initrds
    kinds: list[str] = []
    for line in text.splitlines():
        words = _words(line)
        if not words:
            continue
        if words[0] in ("menuentry", "submenu") and words[-1] == "{":
            kinds.append(words[0])
            stack.append([words[1] if len(words) > 2 else "", _grub_id(words), [], None, []])
        elif words[-1] == "{":  # a function or other block
            kinds.append("block")
        elif words[0] == "}" and kinds:
            kind = kinds.pop()
            if kind != "block":
                title, entry_id, children, kernel, initrds = stack.pop()
                stack[-1][2].append(
                    _MenuEntry(
                        title, entry_id, kernel if kind == "menuentry" else None, tuple(initrds), tuple(children)
                    )
                )
        elif len(stack) > 1 and words[0] in ("linux", "linux16", "linuxefi") and len(words) > 1:
            stack[-1][3] = words[1]
        elif len(stack) > 1 and words[0] in ("initrd", "initrd16", "initrdefi"):
            stack[-1][4] = words[1:]
    return stack[0][2]


def _grub_id(words: list[str]) -> str | None:
    for marker in ("$menuentry_id_option", "--id"):
        if marker in words[:-1]:
            return words[words.index(marker) + 1]
    return None


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote: GRUB would refuse the line too
        return []


def _grubenv(text: str) -> dict[str, str]:
    """grubenv's NAME=value lines (the file is padded with '#' to 1024 bytes)."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def _grub_default_value(text: str, environment: dict[str, str]) -> tuple[str, str]:
    """The default entry GRUB selects, and why: grubenv's next_entry (grub-reboot), else `set default=`."""
    if environment.get("next_entry"):
        return environment["next_entry"], "grubenv's next_entry, set by grub-reboot"
    value, why = "0", "GRUB's own default, the first entry"
    for match in re.finditer(r'^\s*set\s+default=("[^"]*"|\'[^\']*\'|\S+)', text, re.M):
        word = match.group(1).strip("\"'")
        if word == "${next_entry}":
            continue  # the one-shot branch, handled above
        if word in ("${saved_entry}", "$saved_entry"):
            value, why = environment.get("saved_entry", ""), "grubenv's saved_entry, set by grub-set-default"
            if not value:
                value, why = "0", "no saved_entry in grubenv: the first entry"
        else:
            value, why = word, "grub.cfg's set default="
    return value, why


def _grub_select(entries: list[_MenuEntry], default: str) -> tuple[_MenuEntry | None, list[str]]:
    """The entry `default` names: '>'-separated steps, each a position, a title or an id."""
    level = entries
    path: list[str] = []
    for step in default.split(">"):
        found = next((entry for entry in level if step in (entry.title, entry.entry_id)), None)
        if found is None and step.isdigit() and int(step) < len(level):
            found = level[int(step)]
        if found is None:
            return None, path
        path.append(found.title)
        if not found.submenu:
            return found, path
        level = list(found.children)
    # A path that ends on a submenu boots its first entry.
    return (level[0], [*path, level[0].title]) if level and not level[0].submenu else (None, path)


def _grub_path(root: str, path: str, config: str) -> str:
    """A GRUB path as seen on the machine: without a (device) prefix; under /boot when /boot is its own partition."""
    path = re.sub(r"^\([^)]*\)", "", path)
    if not os.path.lexists(inside(root, path)) and os.path.lexists(inside(root, "/boot" + path)):
        return "/boot" + path
    if not os.path.lexists(inside(root, path)):
        raise BootError(
            f"{config}'s default entry names {path}, which does not exist: run update-grub "
            "(grub2-mkconfig) to rewrite it, or name the kernel with --kernel"
        )
    return path


# Boot Loader Specification (systemd-boot)


def bls_default(root: str, notes: list[str]) -> list[Candidate]:
    """The entry systemd-boot would start: loader.conf's `default` pattern, else the first in its order."""
    entries = []
    for place in BLS_PLACES:
        folder = f"{place}/loader/entries"
        try:
            names = os.listdir(inside(root, folder))
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf"):
                fields = _bls_fields(_read(root, f"{folder}/{name}") or "")
                if "linux" in fields:
                    entries.append((place, name.removesuffix(".conf"), fields))
                else:
                    notes.append(f"{folder}/{name}: no linux line (an EFI or unified image entry)")
    if not entries:
        return []
    entries.sort(key=functools.cmp_to_key(_bls_order))
    pattern, config = _loader_default(root)
    chosen = next((entry for entry in entries if pattern and fnmatch.fnmatch(entry[1], pattern)), None)
    why = f"{config}'s default {pattern}" if chosen else "the first in systemd-boot's order"
    place, entry_id, fields = chosen or entries[0]
    where = f"{place}/loader/entries/{entry_id}.conf"
    kernel = _bls_path(root, place, fields["linux"][0], where)
    initrds = tuple(_bls_path(root, place, initrd, where) for initrd in fields.get("initrd", []))
    release = fields.get("version", [None])[0] or _release_from_name(kernel)
    return [Candidate(kernel, initrds, release, f"Boot Loader Specification entry {where} ({why})")]


def _bls_fields(text: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            fields.setdefault(key, []).extend(value.split() if key == "initrd" else [value.strip()])
    return fields


def _bls_order(a: tuple, b: tuple) -> int:
    """systemd-boot's order: entries with a sort-key first (by it, machine-id, newest version), then newest id."""
    (_, a_id, a_fields), (_, b_id, b_fields) = a, b
    a_key, b_key = a_fields.get("sort-key", [None])[0], b_fields.get("sort-key", [None])[0]
    if (a_key is None) != (b_key is None):
        return -1 if a_key is not None else 1
    if a_key is not None:
        for first, second, sign in (
            (a_key, b_key, 1),
            (a_fields.get("machine-id", [""])[0], b_fields.get("machine-id", [""])[0], 1),
            (a_fields.get("version", [""])[0], b_fields.get("version", [""])[0], -1),
        ):
            order = (first > second) - (first < second) if sign == 1 else -compare_versions(first, second)
            if order:
                return order
    return -compare_versions(a_id, b_id)


def _loader_default(root: str) -> tuple[str | None, str | None]:
    for place in BLS_PLACES:
        config = f"{place}/loader/loader.conf"
        for line in (_read(root, config) or "").splitlines():
            key, _, value = line.strip().partition(" ")
            if key == "default" and value.strip():
                return value.strip().removesuffix(".conf"), config
    return None, None


def _bls_path(root: str, place: str, path: str, entry: str) -> str:
    """An entry's path, relative to the partition holding the entries (mounted at `place`)."""
    full = f"{place}/{path.lstrip('/')}"
    if not os.path.lexists(inside(root, full)):
        raise BootError(
            f"{entry} names {path}, which does not exist ({full}): reinstall that kernel "
            "(kernel-install add) or remove the entry"
        )
    return full


# /boot as installed


def newest_installed(root: str, notes: list[str]) -> list[Candidate]:
    """Every /boot/vmlinuz-<release>, newest first by Debian's version order; else the /vmlinuz link."""
    releases = installed_releases(root)
    found = []
    for release in releases:
        kernel = next(
            path
            for path in (f"/boot/vmlinuz-{release}", f"/boot/vmlinux-{release}")
            if os.path.lexists(inside(root, path))
        )
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


def _read(root: str, path: str) -> str | None:
    try:
        with open(inside(root, path), encoding="utf-8", errors="replace") as file:
            return file.read(1 << 20)
    except OSError:
        return None


# Debian's version order (dpkg's verrevcmp), which update-grub uses to sort kernels


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as dpkg --compare-versions orders `a` and `b` (digits as numbers; '~' before everything)."""
    while a or b:
        a_text, a_digits, a = _version_parts(a)
        b_text, b_digits, b = _version_parts(b)
        width = max(len(a_text), len(b_text))
        for x, y in zip(a_text.ljust(width, "\0"), b_text.ljust(width, "\0")):
            if _order(x) != _order(y):
                return -1 if _order(x) < _order(y) else 1
        if int(a_digits or 0) != int(b_digits or 0):
            return -1 if int(a_digits or 0) < int(b_digits or 0) else 1
    return 0


# A version as (non-digits, digits, rest): dpkg compares the parts alternately.
_VERSION_PART = re.compile(r"(\D*)(\d*)(.*)", re.S)


def _version_parts(version: str) -> tuple[str, str, str]:
    """`version`'s leading non-digits, the digits after them, and the rest."""
    match = _VERSION_PART.match(version)
    if match is None:  # every group may be empty, so any text matches: this names a broken pattern
        raise BootError(f"{version!r}: not split into Debian version parts by {_VERSION_PART.pattern!r}")
    text, digits, rest = match.groups()
    return text, digits, rest


def _order(char: str) -> int:
    """dpkg's weight of a character: '~' sorts before the end of the string, letters before other marks."""
    if char == "~":
        return -1
    if char == "\0":
        return 0
    return ord(char) if char.isalpha() else ord(char) + 256
