"""The boot entries an ISO image declares, read from its GRUB and isolinux/syslinux configs.

Search order, as a boot loader booting the image from a file would: `boot/grub/loopback.cfg`
(the convention for booting an image from a file; GRUB hands it the image's path as `iso_path`),
then `boot/grub/grub.cfg`, then the isolinux/syslinux configs in isolinux's own search order.

Every config is untrusted input: its paths are resolved inside the image only (a `..` above the
image's root or another device's path is refused, never followed), includes nest at most
`MAX_DEPTH` deep and a file is read at most `MAX_CONFIG_BYTES`. The image is reached only through
a `read(path) -> text or None` callable, so this module knows nothing about ISO 9660.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import ConfigError

Reader = Callable[[str], Optional[str]]

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
MAX_DEPTH = 16
MAX_CONFIG_BYTES = 1 << 20
# GRUB device prefixes that name the image itself when GRUB boots it (from a CD or through `loopback loop`).
IMAGE_DEVICES = {"", "loop", "cd", "cd0"}
# syslinux runs a file of these kinds as something other than a Linux kernel (doc/syslinux.txt, KERNEL).
NOT_LINUX = (".c32", ".cbt", ".com", ".bs", ".bss", ".0", ".img")


@dataclass
class BootEntry:
    """One bootable Linux entry: its title, kernel and initrds (paths in the image) and command line."""

    title: str
    kernel: str
    initrds: list[str] = field(default_factory=list)
    cmdline: str = ""
    config: str = ""
    """The config file (a path in the image) that declares the entry."""
    names: list[str] = field(default_factory=list)
    """What a config's default may call it: GRUB's position ("2", "1>0") and --id, syslinux's LABEL."""
    marked_default: bool = False
    """syslinux's MENU DEFAULT inside its LABEL."""


@dataclass
class Found:
    """What the search found: the config the entries come from (None: none at all) and the entries."""

    config: str | None
    entries: list[BootEntry]
    examined: list[str]
    default: int | None = None
    """The index of the entry the boot loader would boot without a choice (None: the image does not say)."""
    default_reason: str = ""


def find_entries(read: Reader, iso_path: str) -> Found:
    """The Linux boot entries of the image that `read` reads; `iso_path` is what loopback.cfg receives."""
    examined = []
    candidates = [
        (LOOPBACK, _grub, {"iso_path": iso_path}),
        (GRUB, _grub, {}),
        *((path, _syslinux, {}) for path in SYSLINUX),
    ]
    first_config = None
    for path, parse, variables in candidates:
        text = _read(read, path)
        if text is None:
            continue
        examined.append(path)
        first_config = first_config or path
        entries: list[BootEntry] = []
        context = _Context(read, variables, entries)
        parse(text, path, context)
        if entries:
            return Found(path, entries, examined, *_default(entries, context, path))
    return Found(first_config, [], examined)


def _default(entries: list[BootEntry], context: _Context, config: str) -> tuple[int | None, str]:
    """The entry the boot loader boots when nobody chooses.

    GRUB's `default` (a number, a "1>0" path, an --id or a title); syslinux's MENU DEFAULT in the top
    menu, else ONTIMEOUT, else DEFAULT.
    """
    marked = [index for index, entry in enumerate(entries) if entry.marked_default]
    if marked:
        return marked[0], f"MENU DEFAULT in {entries[marked[0]].config}"
    wanted = context.default
    if not wanted:
        return None, ""
    for index, entry in enumerate(entries):
        if wanted in entry.names or wanted == entry.title:
            return index, f"{context.default_source} {wanted} in {config}"
    return None, ""


class _Context:
    """State shared while one config and its includes are read."""

    def __init__(self, read: Reader, variables: dict[str, str], entries: list[BootEntry]) -> None:
        self.read = read
        self.variables = {"root": "loop", **variables}
        self.entries = entries
        self.depth = 0
        self.base = "/"
        """The folder that relative paths start from (syslinux: the top config's folder)."""
        self.menus: list[str] = []
        """The titles of the syslinux submenus (MENU BEGIN … MENU END) open where the reading is."""
        self.positions: list[int] = [0]
        """GRUB: the next menu item's number at each open menu level (`default` may name an entry so)."""
        self.path: list[int] = []
        """GRUB: the numbers of the open submenus and entry, outermost first."""
        self.default = ""
        self.default_source = ""
        """The default the config names, and how (`set default=`, ONTIMEOUT, DEFAULT)."""

    def include(self, path: str, parse, origin: str) -> None:
        if self.depth >= MAX_DEPTH:
            raise ConfigError(
                f"{origin}: includes nest deeper than {MAX_DEPTH} (a loop?); the image's boot config is broken"
            )
        text = _read(self.read, path)
        if text is None:
            return  # a boot loader skips a missing include too
        self.depth += 1
        try:
            parse(text, path, self)
        finally:
            self.depth -= 1


def _read(read: Reader, path: str) -> str | None:
    text = read(path)
    return None if text is None else text[:MAX_CONFIG_BYTES]


def inside(path: str, base: str, origin: str, variables: dict[str, str] | None = None) -> str:
    """`path` from a config as an absolute, normalised path in the image; refuse one that leaves it."""
    device = re.match(r"\(([^)]*)\)", path)
    # GRUB reads a path without a device from $root; the search starts with root on the image.
    name = device.group(1) if device else _device((variables or {}).get("root", ""))
    if name not in IMAGE_DEVICES:
        raise ConfigError(
            f"{origin}: {path!r} is on another device ({name}), not in the image; only files in the image can be booted"
        )
    if device:
        path = path[device.end() :] or "/"
    joined = path if path.startswith("/") else posixpath.join(base, path)
    parts: list[str] = []
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ConfigError(
                    f"{origin}: {path!r} points outside the image; refusing a path that climbs above its root"
                )
            parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def _device(root: str) -> str:
    """GRUB's $root as a device name: `set root=(hd0,1)` and `set root=hd0,1` name the same device."""
    return root[1:-1] if root.startswith("(") and root.endswith(")") else root


# GRUB script -------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_?#]+)\}|([A-Za-z_][A-Za-z0-9_]*|[0-9?#]))")
_SEPARATOR = object()


def _grub_words(line: str, variables: dict[str, str]) -> list[object]:
    """One line of GRUB script as words, with variables expanded and `;` as a separator between commands."""
    words: list[object] = []
    current: list[str] = []
    started = False
    index = 0

    def finish() -> None:
        nonlocal current, started
        if started:
            words.append("".join(current))
        current, started = [], False

    while index < len(line):
        char = line[index]
        if char in " \t":
            finish()
            index += 1
        elif char == "#" and not started:
            break
        elif char == ";":
            finish()
            words.append(_SEPARATOR)
            index += 1
        elif char == "'":
            end = line.find("'", index + 1)
            end = len(line) if end < 0 else end
            current.append(line[index + 1 : end])
            started = True
            index = end + 1
        elif char == '"':
            index += 1
            while index < len(line) and line[index] != '"':
                if line[index] == "\\" and index + 1 < len(line) and line[index + 1] in '"\\$':
                    current.append(line[index + 1])
                    index += 2
                elif line[index] == "$" and (match := _VARIABLE.match(line, index)):
                    current.append(variables.get(match.group(1) or match.group(2), ""))
                    index = match.end()
                else:
                    current.append(line[index])
                    index += 1
            started = True
            index += 1
        elif char == "\\" and index + 1 < len(line):
            current.append(line[index + 1])
            started = True
            index += 2
        elif char == "$" and (match := _VARIABLE.match(line, index)):
            value = variables.get(match.group(1) or match.group(2), "")
            # An unquoted empty expansion is no word at all (`[ ${iso_path} ]` is `[ ]`).
            started = started or bool(value)
            current.append(value)
            index = match.end()
        else:
            current.append(char)
            started = True
            index += 1
    finish()
    return words


def _grub_commands(text: str, variables: dict[str, str]):
    """The commands of a GRUB script, one word list each, expanded with `variables` as they stand then."""
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line, pending = pending + raw, ""
        command: list[str] = []
        for word in _grub_words(line, variables):
            if word is _SEPARATOR:
                if command:
                    yield command
                command = []
            else:
                command.append(word)  # type: ignore[arg-type]
        if command:
            yield command


def _test(words: list[str], context: _Context, origin: str) -> bool:
    """GRUB's `[ … ]`/`test` for the forms configs use to adapt to how they were booted; other conditions hold."""
    if words and words[0] == "[":
        words = words[1:-1] if words[-1:] == ["]"] else words[1:]
    elif words and words[0] == "test":
        words = words[1:]
    else:
        return True  # a command as condition (loadfont, search): assume it succeeds
    if not words:
        return False
    if len(words) == 1:
        return words[0] != ""
    if len(words) == 2 and words[0] in ("-n", "-z"):
        return (words[1] != "") == (words[0] == "-n")
    if len(words) == 2 and words[0] in ("-e", "-f", "-d", "-s"):
        try:
            return context.read(inside(words[1], "/", origin, context.variables)) is not None
        except ConfigError:
            return False
    if len(words) == 3 and words[1] in ("=", "==", "!="):
        return (words[0] == words[2]) == (words[1] != "!=")
    return True


def _grub(text: str, origin: str, context: _Context) -> None:
    """Read a GRUB config: menuentry/submenu blocks, set, if/elif/else, source and configfile."""
    blocks: list[object] = []  # open menuentry (a BootEntry) or submenu (its title)
    branches: list[list[bool]] = []  # per open `if`: [this branch runs, a branch already ran, enclosing code runs]
    variables = context.variables
    saved: list[dict[str, str]] = []  # the variables as each open block found them

    def running() -> bool:
        return not branches or branches[-1][0]

    def title(own: str) -> str:
        return _titled(blocks, own)

    for words in _grub_commands(text, variables):
        name, arguments = words[0], words[1:]
        if name == "if":
            taken = running() and _test(arguments, context, origin)
            branches.append([taken, taken, running()])
            continue
        if name in ("elif", "else") and branches:
            state = branches[-1]
            taken = state[2] and not state[1] and (name == "else" or _test(arguments, context, origin))
            state[0], state[1] = taken, state[1] or taken
            continue
        if name == "fi" and branches:
            branches.pop()
            continue
        if name in ("then", "do", "done"):
            words = arguments
            if not words:
                continue
            name, arguments = words[0], words[1:]
        if not running():
            continue
        if name == "set" and arguments and "=" in arguments[0]:
            key, _, value = arguments[0].partition("=")
            variables[key] = value
        elif "=" in name and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", name):
            key, _, value = name.partition("=")
            variables[key] = value
        elif name == "search" and any(word in ("--set=root", "--set") for word in arguments):
            variables["root"] = "loop"  # an image's config searches for a file of its own: the image
        elif name in ("menuentry", "submenu") and arguments:
            own = arguments[0]
            context.path.append(context.positions[-1])
            context.positions[-1] += 1
            context.positions.append(0)
            if name == "menuentry":
                names = [">".join(map(str, context.path)), *_grub_ids(arguments)]
                blocks.append(BootEntry(title(own), kernel="", config=origin, names=names))
            else:
                blocks.append(title(own))
            saved.append(dict(variables))
        elif name == "}" and blocks:
            closed = blocks.pop()
            context.path.pop()
            context.positions.pop()
            # GRUB runs an entry's body only when it is chosen: what it sets does not reach the next entry.
            variables.clear()
            variables.update(saved.pop())
            if isinstance(closed, BootEntry) and closed.kernel:
                context.entries.append(closed)
        elif name in ("linux", "linux16", "linuxefi") and arguments and (entry := _entry(blocks)):
            entry.kernel = inside(arguments[0], "/", f"{origin}, entry {entry.title!r}", variables)
            entry.cmdline = " ".join(arguments[1:])
        elif name in ("initrd", "initrd16", "initrdefi") and (entry := _entry(blocks)):
            entry.initrds = [inside(path, "/", f"{origin}, entry {entry.title!r}", variables) for path in arguments]
        elif name in ("source", "configfile") and arguments:
            path = inside(arguments[0], "/", origin, variables)
            entry = _entry(blocks)
            if name == "configfile" and entry is not None:
                # An entry that opens another menu is a submenu of that menu's entries.
                blocks[-1] = entry.title
            context.include(path, _grub_nested(blocks), origin)
    if context.depth == 0 and variables.get("default"):
        context.default, context.default_source = variables["default"], "set default="


def _grub_ids(arguments: list[str]) -> list[str]:
    """A menuentry's `--id ID` or `--id=ID`."""
    for index, word in enumerate(arguments):
        if word == "--id" and index + 1 < len(arguments):
            return [arguments[index + 1]]
        if word.startswith("--id="):
            return [word[len("--id=") :]]
    return []


def _entry(blocks: list[object]) -> BootEntry | None:
    return blocks[-1] if blocks and isinstance(blocks[-1], BootEntry) else None


def _titled(blocks: list[object], own: str) -> str:
    """`own` under the innermost open submenu's title (which already carries its own parents)."""
    menu = next((block for block in reversed(blocks) if isinstance(block, str)), None)
    return f"{menu} > {own}" if menu else own


def _grub_nested(blocks: list[object]):
    """An included config's parser whose entry titles carry the enclosing submenus' titles."""

    def parse(text: str, origin: str, context: _Context) -> None:
        before = len(context.entries)
        _grub(text, origin, context)
        for entry in context.entries[before:]:
            entry.title = _titled(blocks, entry.title)

    return parse


# isolinux / syslinux -----------------------------------------------------------------------------


def _syslinux(text: str, origin: str, context: _Context) -> None:
    """Read an isolinux/syslinux config: LABEL blocks, INCLUDE, MENU INCLUDE and CONFIG followed."""
    if context.depth == 0:
        # syslinux starts in the folder of the config it found; relative paths start there.
        context.base = posixpath.dirname(origin) or "/"
    label: dict[str, object] | None = None
    lines = iter(text.splitlines())

    def finish() -> None:
        if label is not None:
            entry = _syslinux_entry(label, origin, context)
            if entry is not None:
                context.entries.append(entry)

    for line in lines:
        words = line.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        keyword, rest = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
        if keyword == "menu":
            sub = rest.split(None, 1)
            keyword = "menu " + sub[0].lower() if sub else "menu"
            rest = sub[1].strip() if len(sub) > 1 else ""
        if keyword == "text" and rest.lower() == "help":
            for skipped in lines:
                if skipped.strip().lower() == "endtext":
                    break
        elif keyword == "label":
            finish()
            label = {"name": rest, "title": rest}
        elif keyword == "menu begin":
            finish()
            label = None
            context.menus.append(rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else "")
        elif keyword == "menu end" and context.menus:
            finish()
            label = None
            context.menus.pop()
        elif keyword in ("menu label", "menu title") and label is None and context.menus and not context.menus[-1]:
            context.menus[-1] = rest.replace("^", "")  # the submenu's own label names it
        elif keyword == "menu label" and label is not None:
            label["title"] = rest.replace("^", "")
        elif keyword == "menu default" and label is not None:
            label["default"] = True
        elif keyword in ("ontimeout", "default") and rest and context.default_source != "ONTIMEOUT":
            # With a menu, ONTIMEOUT is what runs when nobody chooses; DEFAULT may name the menu program.
            context.default, context.default_source = rest.split()[0], keyword.upper()
        elif keyword in ("kernel", "linux") and label is not None:
            label["kernel"] = rest.split()[0] if rest else ""
            label["linux"] = keyword == "linux" or not rest.lower().endswith(NOT_LINUX)
        elif keyword in ("com32", "comboot", "boot", "bss", "pxe", "fdimage", "localboot") and label is not None:
            label["linux"] = False
        elif keyword == "initrd" and label is not None:
            label["initrd"] = rest
        elif keyword == "append" and label is not None:
            label["append"] = "" if rest == "-" else rest
        elif keyword == "config" and label is not None:
            # A label that switches config is another menu (help screens, back to the top): it boots nothing.
            label["linux"] = False
        elif keyword in ("include", "menu include", "config") and rest:
            context.include(inside(rest.split()[0], context.base, origin), _syslinux, origin)
    finish()


def _syslinux_entry(label: dict[str, object], origin: str, context: _Context) -> BootEntry | None:
    kernel = str(label.get("kernel") or "")
    if not kernel or not label.get("linux", True) or posixpath.basename(kernel).lower() == "memdisk":
        return None
    words = str(label.get("append", "")).split()
    initrd_lists = [str(label["initrd"])] if label.get("initrd") else []
    initrd_lists += [word[len("initrd=") :] for word in words if word.startswith("initrd=")]
    initrds = [inside(path, context.base, origin) for listed in initrd_lists for path in listed.split(",") if path]
    cmdline = " ".join(word for word in words if not word.startswith("initrd="))
    title = " > ".join([*(menu for menu in context.menus if menu), str(label["title"])])
    return BootEntry(
        title,
        inside(kernel, context.base, origin),
        initrds,
        cmdline,
        origin,
        names=[str(label["name"])],
        # MENU DEFAULT inside MENU BEGIN … END picks that submenu's default only.
        marked_default=bool(label.get("default")) and not context.menus,
    )
