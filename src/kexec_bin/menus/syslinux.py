"""syslinux/isolinux menus as syslinux reads them: LABEL blocks, MENU BEGIN/END submenus, INCLUDE,
MENU INCLUDE and CONFIG, MENU DEFAULT, ONTIMEOUT and DEFAULT.

An included file is read as if its lines stood where the INCLUDE is (syslinux's parser goes on with
the label open there), so the menu's order is the boot loader's. Relative paths start in the folder
of the config syslinux found.
"""

from __future__ import annotations

import posixpath

from . import Budget, Entry, Menu

TYPE_CHECKING = False
if TYPE_CHECKING:
    from . import Reader, Resolver

# syslinux runs a file of these kinds as something other than a Linux kernel (doc/syslinux.txt, KERNEL).
NOT_LINUX = (".c32", ".cbt", ".com", ".bs", ".bss", ".0", ".img")
NOT_LINUX_KEYWORDS = ("com32", "comboot", "boot", "bss", "pxe", "fdimage", "localboot")


def read_menu(read: Reader, resolve: Resolver, config: str, *, budget: Budget | None = None) -> Menu | None:
    """Every Linux entry of the syslinux config `config` and what it includes; None when there is no such file."""
    budget = budget or Budget()
    text = budget.read(read, config, config)
    if text is None:
        return None
    context = _Context(read, resolve, budget, posixpath.dirname(config) or "/")
    _run(text, config, context)
    context.finish()
    return Menu(context.entries, context.default, context.default_source)


def select(entries: list[Entry], default: str) -> Entry | None:
    """The entry a default or --entry names: its LABEL, or its title as the menu shows it."""
    return next((entry for entry in entries if default in entry.names or default == entry.title), None)


class _Context:
    """State that runs on through includes: the open label, the open submenus, the default."""

    def __init__(self, read: Reader, resolve: Resolver, budget: Budget, base: str) -> None:
        self.read = read
        self.resolve = resolve
        self.budget = budget
        self.base = base
        self.entries: list[Entry] = []
        self.label: dict[str, object] | None = None
        self.label_origin = ""
        self.menus: list[str] = []
        """The titles of the submenus (MENU BEGIN … MENU END) open where the reading is."""
        self.default = ""
        self.default_source = ""

    def path(self, word: str, origin: str) -> str:
        return self.resolve(word, "", self.base, origin)

    def open(self, label: dict[str, object] | None, origin: str) -> None:
        self.finish()
        self.label, self.label_origin = label, origin

    def finish(self) -> None:
        """Close the open label: an entry when it boots a Linux kernel."""
        label, self.label = self.label, None
        if label is None:
            return
        kernel = str(label.get("kernel") or "")
        if not kernel or not label.get("linux", True) or posixpath.basename(kernel).lower() == "memdisk":
            return
        origin = self.label_origin
        self.budget.entry(origin)
        words = str(label.get("append", "")).split()
        initrd_lists = [str(label["initrd"])] if label.get("initrd") else []
        initrd_lists += [word[len("initrd=") :] for word in words if word.startswith("initrd=")]
        self.entries.append(
            Entry(
                " > ".join([*(menu for menu in self.menus if menu), str(label["title"])]),
                self.path(kernel, origin),
                [self.path(path, origin) for listed in initrd_lists for path in listed.split(",") if path],
                " ".join(word for word in words if not word.startswith("initrd=")),
                origin,
                names=[str(label["name"])],
                # MENU DEFAULT inside MENU BEGIN … END picks that submenu's default only.
                marked_default=bool(label.get("default")) and not self.menus,
            )
        )

    def include(self, word: str, origin: str) -> None:
        path = self.path(word, origin)
        self.budget.include(self.read, path, origin, lambda text: _run(text, path, self))


def _run(text: str, origin: str, context: _Context) -> None:
    lines = iter(text.splitlines())
    for line in lines:
        words = line.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        keyword, rest = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
        if keyword == "menu":
            sub = rest.split(None, 1)
            keyword = "menu " + sub[0].lower() if sub else "menu"
            rest = sub[1].strip() if len(sub) > 1 else ""
        label = context.label
        if keyword == "text" and rest.lower() == "help":
            for skipped in lines:
                if skipped.strip().lower() == "endtext":
                    break
        elif keyword == "label":
            context.open({"name": rest, "title": rest}, origin)
        elif keyword == "menu begin":
            context.open(None, origin)
            context.budget.depth(len(context.menus) + 1, origin, "submenus")
            context.menus.append(rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else "")
        elif keyword == "menu end" and context.menus:
            context.open(None, origin)
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
        elif keyword in NOT_LINUX_KEYWORDS and label is not None:
            label["linux"] = False
        elif keyword == "initrd" and label is not None:
            label["initrd"] = rest
        elif keyword == "append" and label is not None:
            label["append"] = "" if rest == "-" else rest
        elif keyword == "config" and label is not None:
            # A label that switches config is another menu (help screens, back to the top): it boots nothing.
            label["linux"] = False
        elif keyword in ("include", "menu include", "config") and rest:
            context.include(rest.split()[0], origin)
