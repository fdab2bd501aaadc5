"""GRUB's menus as GRUB 2 itself reads its script: `set` and variables, `if`/`elif`/`else`,
`menuentry`/`submenu`, `source`, `configfile`, `load_env` (grubenv's saved_entry and next_entry),
`search --set=root`, and `default` as a position, an --id, a title or a `>` path through submenus.

Functions are defined, never run (their bodies are skipped); loops and other commands are ignored.
Only what decides the menu is interpreted: which entries exist, their kernel, initrds and command
line, and the default. Conditions the reader cannot decide (a command's success) are taken as true.
"""

from __future__ import annotations

import re

from ..errors import ConfigError
from . import Budget, Entry, Menu

TYPE_CHECKING = False
if TYPE_CHECKING:
    from . import Reader, Resolver

# The features GRUB 2 announces to its scripts (grub-core/normal/main.c): grub-mkconfig's output tests them.
FEATURES = dict.fromkeys(
    (
        "feature_chainloader_bpb",
        "feature_ntldr",
        "feature_platform_search_hint",
        "feature_default_font_path",
        "feature_all_video_module",
        "feature_menuentry_id",
        "feature_menuentry_options",
        "feature_200_final",
        "feature_nativedisk_cmd",
        "feature_timeout_style",
    ),
    "y",
)
LINUX = ("linux", "linux16", "linuxefi")
INITRD = ("initrd", "initrd16", "initrdefi")

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_?#]+)\}|([A-Za-z_][A-Za-z0-9_]*|[0-9?#]))")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.S)
_SEPARATOR = object()


def read_menu(
    read: Reader,
    resolve: Resolver,
    config: str,
    *,
    variables: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
    budget: Budget | None = None,
) -> Menu | None:
    """Every entry of the GRUB config `config` and what it sources; None when there is no such file.

    `variables` are set before the script runs (loopback.cfg's iso_path, the host's prefix);
    `environment` is what `load_env` loads (grubenv's NAME=value lines).
    """
    budget = budget or Budget()
    text = budget.read(read, config, config)
    if text is None:
        return None
    context = _Context(read, resolve, {"root": "loop", **FEATURES, **(variables or {})}, environment or {}, budget)
    _run(text, config, context)
    default = context.variables.get("default", "")
    return Menu(context.entries, default, "set default=" if default else "")


def grubenv(text: str) -> dict[str, str]:
    """grubenv's NAME=value lines, unescaped as GRUB's load_env reads them ('\\' and newline are written
    escaped; grub-editenv pads the block with '#' to 1024 bytes)."""
    variables = {}
    for line in text.split("\n"):
        if line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        variables[name] = value.replace("\\n", "\n").replace("\\\\", "\\")
    return variables


def select(entries: list[Entry], default: str) -> tuple[Entry | None, list[str]]:
    """The entry `default` names as GRUB looks it up, and the titles on the way.

    `default` is `>`-separated steps from the top menu, each an --id, a title or a position (GRUB looks
    a bare name up in the top menu only); a path that ends on a submenu boots that submenu's first entry.
    """
    steps = default.split(">")
    candidates = entries
    titles: list[str] = []
    for depth, wanted in enumerate(steps):
        level = [entry for entry in candidates if len(entry.steps) > depth]
        matched = [entry for entry in level if wanted in entry.steps[depth][1:]]
        if not matched and wanted.isascii() and wanted.isdigit() and len(wanted) < 10:
            matched = [entry for entry in level if entry.steps[depth][0] == int(wanted)]
        if not matched:
            return None, titles
        first = matched[0].steps[depth]  # GRUB takes the first item of that name
        candidates = [entry for entry in matched if entry.steps[depth] == first]
        titles.append(first[1])
    chosen = candidates[0]
    if len(chosen.steps) == len(steps):
        return chosen, titles
    if len(chosen.steps) == len(steps) + 1 and chosen.steps[-1][0] == 0:
        return chosen, [*titles, chosen.steps[-1][1]]
    return None, titles


class _Context:
    """State shared while one config and what it sources are read."""

    def __init__(
        self, read: Reader, resolve: Resolver, variables: dict[str, str], environment: dict[str, str], budget: Budget
    ) -> None:
        self.read = read
        self.resolve = resolve
        self.variables = variables
        self.environment = environment
        self.budget = budget
        self.entries: list[Entry] = []
        self.positions: list[int] = [0]
        """The next item's position at each open menu level."""
        self.steps: list[tuple[int, str, str | None]] = []
        """(position, title, id) of each open submenu or entry, outermost first."""

    def path(self, word: str, origin: str) -> str:
        """A path from the script in the tree: on its `(device)`, else on $root's."""
        device = re.match(r"\(([^)]*)\)", word)
        name = device.group(1) if device else _device(self.variables.get("root", ""))
        return self.resolve(word, name, "/", origin)

    def include(self, word: str, origin: str, new_menu: bool) -> None:
        """`source` (the same menu goes on) or `configfile` (a new menu, numbered from 0)."""
        path = self.path(word, origin)
        if new_menu:
            self.positions.append(0)
        try:
            self.budget.include(self.read, path, origin, lambda text: _run(text, path, self))
        finally:
            if new_menu:
                self.positions.pop()


def _device(root: str) -> str:
    """GRUB's $root as a device name: `set root=(hd0,1)` and `set root=hd0,1` name the same device."""
    return root[1:-1] if root.startswith("(") and root.endswith(")") else root


def _words(line: str, variables: dict[str, str], budget: Budget, origin: str) -> list[object]:
    """One line of GRUB script as words, with variables expanded and `;` as a separator between commands."""
    words: list[object] = []
    current: list[str] = []
    length = 0
    started = False
    index = 0

    def finish() -> None:
        nonlocal current, started, length
        if started:
            words.append("".join(current))
        current, started, length = [], False, 0

    def expand(match: re.Match) -> str:
        nonlocal length
        value = variables.get(match.group(1) or match.group(2), "")
        length += len(value)
        budget.expand(len(value), length, origin)
        return value

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
                    current.append(expand(match))
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
            value = expand(match)
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


def _commands(text: str, context: _Context, origin: str):
    """The commands of a GRUB script, one word list each, expanded with the variables as they stand then."""
    pending: list[str] = []
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        line = "".join([*pending, raw])
        pending = []
        command: list[str] = []
        for word in _words(line, context.variables, context.budget, origin):
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
            return context.read(context.path(words[1], origin)) is not None
        except ConfigError:
            return False
    if len(words) == 3 and words[1] in ("=", "==", "!="):
        return (words[0] == words[2]) == (words[1] != "!=")
    return True


def _run(text: str, origin: str, context: _Context) -> None:
    """Run a GRUB script for its menu: entries, variables, conditions, and the files it sources."""
    blocks: list[Entry | None] = []  # open menuentry (its Entry) or submenu (None)
    branches: list[list[bool]] = []  # per open `if`: [this branch runs, a branch already ran, enclosing code runs]
    undo: list[dict[str, str | None]] = []  # per open block: the variables it changed, as they were before
    skipping = 0  # the depth inside a function's body, which runs only when called
    variables = context.variables

    def running() -> bool:
        return not branches or branches[-1][0]

    def assign(key: str, value: str) -> None:
        if undo and key not in undo[-1]:
            undo[-1][key] = variables.get(key)
        variables[key] = value

    for words in _commands(text, context, origin):
        name, arguments = words[0], words[1:]
        if skipping:
            skipping += (words[-1] == "{") - (name == "}")
            continue
        if name == "function":
            skipping = 1 if words[-1] == "{" else 0
            continue
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
            assign(*arguments[0].split("=", 1))
        elif _ASSIGNMENT.fullmatch(name):
            assign(*name.split("=", 1))
        elif name == "load_env":
            for key, value in context.environment.items():
                assign(key, value)
        elif name == "search" and any(word in ("--set=root", "--set") for word in arguments):
            assign("root", "loop")  # the search finds the device of the config's own files
        elif name in ("menuentry", "submenu") and arguments:
            context.budget.entry(origin)
            context.budget.depth(len(context.steps) + 1, origin, "submenus")
            position = context.positions[-1]
            context.positions[-1] += 1
            context.positions.append(0)
            context.steps.append((position, arguments[0], _grub_id(arguments)))
            if name == "menuentry":
                entry = Entry(_title(context.steps), config=origin, steps=list(context.steps))
                entry.names = [entry_id for _, _, entry_id in context.steps[-1:] if entry_id]
                blocks.append(entry)
            else:
                blocks.append(None)
            undo.append({})
        elif name == "}" and blocks:
            closed = blocks.pop()
            context.steps.pop()
            context.positions.pop()
            # GRUB runs an entry's body only when it is chosen: what it sets does not reach the next entry.
            for key, before in undo.pop().items():
                if before is None:
                    variables.pop(key, None)
                else:
                    variables[key] = before
            if closed is not None:
                context.entries.append(closed)
        elif name in LINUX and arguments and (open_entry := _entry(blocks)):
            open_entry.kernel = context.path(arguments[0], f"{origin}, entry {open_entry.title!r}")
            open_entry.cmdline = " ".join(arguments[1:])
        elif name in INITRD and (open_entry := _entry(blocks)):
            open_entry.initrds = [context.path(path, f"{origin}, entry {open_entry.title!r}") for path in arguments]
        elif name in ("source", "configfile") and arguments:
            if name == "configfile" and _entry(blocks) is not None:
                # An entry that opens another menu is a submenu of that menu's entries.
                blocks[-1] = None
            context.include(arguments[0], origin, new_menu=name == "configfile")


def _title(steps: list[tuple[int, str, str | None]]) -> str:
    return " > ".join(title for _, title, _ in steps)


def _grub_id(arguments: list[str]) -> str | None:
    """A menuentry's `--id ID` or `--id=ID`."""
    for index, word in enumerate(arguments):
        if word == "--id" and index + 1 < len(arguments):
            return arguments[index + 1]
        if word.startswith("--id="):
            return word[len("--id=") :]
    return None


def _entry(blocks: list[Entry | None]) -> Entry | None:
    return blocks[-1] if blocks else None
