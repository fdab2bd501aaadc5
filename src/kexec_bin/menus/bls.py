"""Boot Loader Specification entries (systemd-boot, kernel-install) in the order systemd-boot lists them,
and loader.conf's `default` pattern.

An entry file holds `key value` lines; its paths are relative to the partition that holds the
entries (the `place`: /boot, /efi or /boot/efi), so an entry's kernel is `place` + its `linux`.
"""

from __future__ import annotations

import fnmatch
import functools

from . import Budget, Entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from . import Reader

    Lister = Callable[[str], list[str]]
    """A folder in the tree -> the names in it, [] when there is no such folder."""

PLACES = ("/boot", "/efi", "/boot/efi")


def read_entries(read: Reader, listdir: Lister, *, budget: Budget | None = None) -> tuple[list[Entry], list[str]]:
    """Every entry that starts a Linux kernel, first in systemd-boot's order; and a note for each passed over."""
    budget = budget or Budget()
    found: list[tuple[str, dict[str, list[str]], Entry]] = []
    notes = []
    for place in PLACES:
        folder = f"{place}/loader/entries"
        for name in sorted(listdir(folder)):
            if not name.endswith(".conf"):
                continue
            path = f"{folder}/{name}"
            fields = _fields(budget.read(read, path, path) or "")
            if "linux" not in fields:
                notes.append(f"{path}: no linux line (an EFI or unified image entry)")
                continue
            budget.entry(path)
            entry = Entry(
                (fields.get("title") or [name])[0],
                f"{place}/{fields['linux'][0].lstrip('/')}",
                [f"{place}/{initrd.lstrip('/')}" for initrd in fields.get("initrd", [])],
                " ".join(fields.get("options", [])),
                path,
                names=[name.removesuffix(".conf")],
                version=fields["version"][0] if fields.get("version") else None,
            )
            found.append((name.removesuffix(".conf"), fields, entry))
    found.sort(key=functools.cmp_to_key(_order))
    return [entry for _, _, entry in found], notes


def loader_default(read: Reader) -> tuple[str | None, str | None]:
    """loader.conf's `default` (a glob over entry ids) and the file that says it; (None, None) without one."""
    for place in PLACES:
        config = f"{place}/loader/loader.conf"
        for line in (read(config) or "").splitlines():
            key, _, value = line.strip().partition(" ")
            if key == "default" and value.strip():
                return value.strip().removesuffix(".conf"), config
    return None, None


def select(entries: list[Entry], pattern: str | None) -> Entry | None:
    """The first entry whose id matches loader.conf's `default` pattern."""
    return next((entry for entry in entries if pattern and fnmatch.fnmatch(entry.names[0], pattern)), None)


def _fields(text: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            fields.setdefault(key, []).extend(value.split() if key == "initrd" else [value.strip()])
    return fields


def _order(a: tuple, b: tuple) -> int:
    """systemd-boot's order: entries with a sort-key first (by it, machine-id, newest version), then newest id."""
    (a_id, a_fields, _), (b_id, b_fields, _) = a, b
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


# Debian's version order (dpkg's verrevcmp), which update-grub uses to sort kernels


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as dpkg --compare-versions orders `a` and `b` (digits as numbers; '~' before everything)."""
    while a or b:
        a_text, a_digits, a = _version_parts(a)
        b_text, b_digits, b = _version_parts(b)
        width = max(len(a_text), len(b_text))
        for x, y in zip(a_text.ljust(width, "\0"), b_text.ljust(width, "\0")):
            if _weight(x) != _weight(y):
                return -1 if _weight(x) < _weight(y) else 1
        a_number, b_number = a_digits.lstrip("0"), b_digits.lstrip("0")  # as numbers, however long
        if (len(a_number), a_number) != (len(b_number), b_number):
            return -1 if (len(a_number), a_number) < (len(b_number), b_number) else 1
    return 0


def _version_parts(version: str) -> tuple[str, str, str]:
    """`version`'s leading non-digits, the digits after them, and the rest."""
    text = _leading(version, digit=False)
    digits = _leading(version[len(text) :], digit=True)
    return text, digits, version[len(text) + len(digits) :]


def _leading(text: str, *, digit: bool) -> str:
    """The longest start of `text` made of ASCII digits (or of anything else)."""
    end = 0
    while end < len(text) and (text[end] in "0123456789") == digit:
        end += 1
    return text[:end]


def _weight(char: str) -> int:
    """dpkg's weight of a character: '~' sorts before the end of the string, letters before other marks."""
    if char == "~":
        return -1
    if char == "\0":
        return 0
    return ord(char) if char.isalpha() else ord(char) + 256
