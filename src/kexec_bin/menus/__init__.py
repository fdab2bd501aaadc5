"""Boot menus, read the way their boot loaders read them: GRUB script (`grub`), syslinux/isolinux
(`syslinux`) and Boot Loader Specification entries (`bls`).

A reader knows nothing about where its files are: it is given a `Reader` (a path in the tree to its
text, None when there is no such file) and a `Resolver` (a path as a config writes it to a path in
the tree, or a refusal). The host's menus (`kexec-bin reboot`) and an ISO image's (`kexec-bin iso`)
are read by the same code, through different readers and resolvers.

Every menu is untrusted input, so one `Budget` bounds the total work of reading one set of menus:
the files read, their bytes, the text that variables expand to, the entries, and how deep includes
and submenus nest. Past a bound the reading stops with a `ConfigError` that names it.
"""

from __future__ import annotations

from ..errors import ConfigError

# Plain classes and no `typing` at run time: `kexec-bin reboot` reads the host's menus on every run,
# and dataclasses (with inspect) and typing cost more to import than the reading itself.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional

    Reader = Callable[[str], Optional[str]]
    """A path in the tree -> the file's text, None when there is no such file."""
    Resolver = Callable[[str, str, str, str], str]
    """(a path as the config writes it, the device it is on, the folder it is relative to, the config and entry
    naming it) -> the path in the tree; raises ConfigError for a path that must not be read."""


class Entry:
    """One menu entry: its title, kernel ("" when it starts no Linux kernel), initrds and command line.

    `config`: the config file that declares it; `names`: what a default or --entry may call it besides
    its title (syslinux's LABEL, GRUB's --id); `steps` (GRUB): (position, title, id) of each enclosing
    submenu and then the entry itself; `marked_default`: syslinux's MENU DEFAULT inside its LABEL (in
    the top menu); `version`: a Boot Loader Specification entry's `version` line.
    """

    __slots__ = ("cmdline", "config", "initrds", "kernel", "marked_default", "names", "steps", "title", "version")

    def __init__(
        self,
        title: str,
        kernel: str = "",
        initrds: list[str] | None = None,
        cmdline: str = "",
        config: str = "",
        names: list[str] | None = None,
        steps: list[tuple[int, str, str | None]] | None = None,
        marked_default: bool = False,
        version: str | None = None,
    ) -> None:
        self.title, self.kernel, self.cmdline, self.config = title, kernel, cmdline, config
        self.initrds = [] if initrds is None else initrds
        self.names = [] if names is None else names
        self.steps = [] if steps is None else steps
        self.marked_default, self.version = marked_default, version

    def __repr__(self) -> str:
        return f"Entry({self.title!r}, {self.kernel!r}, {self.initrds!r}, {self.cmdline!r})"


class Menu:
    """Every entry of a config and its includes (Linux or not, in menu order), and the default it names
    (`default_source`: how the config names it: `set default=`, ONTIMEOUT, DEFAULT)."""

    __slots__ = ("default", "default_source", "entries")

    def __init__(self, entries: list[Entry], default: str = "", default_source: str = "") -> None:
        self.entries, self.default, self.default_source = entries, default, default_source


class Budget:
    """The total work one reading of menus may do; past a bound it stops with a ConfigError naming it.

    Real menus stay far below each bound (Debian's installer image: 15 files, 20 KiB, 40 entries).
    """

    FILES = 64
    BYTES = 4 << 20
    EXPANSION = 16 << 20
    WORD = 64 << 10
    ENTRIES = 2000
    DEPTH = 16
    NESTING = 32

    def __init__(self) -> None:
        self.open_includes = 0
        self.files = 0
        self.bytes = 0
        self.expanded = 0
        self.entries = 0

    def read(self, read: Reader, path: str, origin: str) -> str | None:
        """`path`'s text through `read`, counted against the files and bytes bounds."""
        text = read(path)
        if text is None:
            return None
        self.files += 1
        self.bytes += len(text)
        if self.files > self.FILES:
            raise refusal(origin, f"read more than {self.FILES} config files (an include fan-out?)")
        if self.bytes > self.BYTES:
            raise refusal(origin, f"hold more than {self.BYTES >> 20} MiB of config text")
        return text

    def include(self, read: Reader, path: str, origin: str, run: Callable[[str], None]) -> None:
        """Run an included file's text where the include stands (a missing file is skipped, as boot loaders do)."""
        self.depth(self.open_includes + 1, origin, "includes")
        text = self.read(read, path, origin)
        if text is None:
            return
        self.open_includes += 1
        try:
            run(text)
        finally:
            self.open_includes -= 1

    def expand(self, count: int, word_length: int, origin: str) -> None:
        """Count `count` characters of variable expansion into a word now `word_length` long."""
        self.expanded += count
        if word_length > self.WORD:
            raise refusal(origin, f"expand a word to more than {self.WORD >> 10} KiB (a variable that doubles?)")
        if self.expanded > self.EXPANSION:
            raise refusal(origin, f"expand to more than {self.EXPANSION >> 20} MiB of text")

    def entry(self, origin: str) -> None:
        self.entries += 1
        if self.entries > self.ENTRIES:
            raise refusal(origin, f"declare more than {self.ENTRIES} entries")

    def depth(self, depth: int, origin: str, what: str) -> None:
        """Refuse includes (or submenus) nested deeper than their bound."""
        limit = self.DEPTH if what == "includes" else self.NESTING
        if depth > limit:
            raise refusal(origin, f"nest {what} deeper than {limit} (a loop?)")


def refusal(origin: str, what: str) -> ConfigError:
    return ConfigError(
        f"{origin}: the boot menus {what}, past what kexec-bin reads; the boot config is broken or hostile"
    )


def without_device(word: str) -> str:
    """A GRUB path without its `(device)` prefix."""
    if word.startswith("(") and ")" in word:
        return word[word.index(")") + 1 :] or "/"
    return word


def normalise(path: str, base: str, origin: str) -> str:
    """`path` (relative to `base`) as an absolute, normalised path; refuse one that climbs above the root."""
    joined = path if path.startswith("/") else f"{base.rstrip('/')}/{path}"
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
