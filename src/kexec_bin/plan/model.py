"""The plan itself: the files to load (each with where it came from and how it was checked), the
command line, and its text for a person to read before anything is loaded.

The model probes nothing: what the host says (memory available, the kexec program) is given to
`to_text` by whoever asked the host (`boot.carry_out`).
"""

from __future__ import annotations

import os
import re

from ..errors import PlanError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence

# What the user asked for: print the plan only, load it and leave `kexec -e` to them, or boot it.
DRY_RUN, LOAD_ONLY, BOOT = "dry-run", "load-only", "boot"
MODES = (DRY_RUN, LOAD_ONLY, BOOT)


# A value the kernel's command-line parser and the installer's env2debconf keep as one word:
# printable ASCII without spaces, quotes or backslashes.
_ONE_WORD = re.compile(r"[!#-&(-\[\]-~]*")


def parameter(name: str, value: str | list[str], what: str) -> str:
    """`name=value` for the kernel command line; a list becomes one double-quoted, space-separated value.

    Refuses (PlanError naming `what`) a value with whitespace, quotes, backslashes, control or
    non-ASCII characters: on the command line it would end the parameter and start another.
    """
    values = value if isinstance(value, list) else [value]
    for item in values:
        if not _ONE_WORD.fullmatch(item):
            raise PlanError(
                f"{what} {item!r}: holds a space, a quote, a backslash or a character outside printable "
                "ASCII, which would change the installer's kernel command line; give a value without them"
            )
    joined = " ".join(values)
    return f'{name}="{joined}"' if len(values) > 1 else f"{name}={joined}"


class PlannedFile:
    """One file the plan loads: where kexec reads it, where it came from, and how it was checked.

    `temporary`: the file exists only while the plan is carried out (extracted from an image, made
    here); the plan's text names its origin instead of a path that is gone when a dry run ends.
    `known_size`: its size where the file is not written for a plan that only shows it (a dry run
    of an image's entry), else None: the size is the file's own.
    """

    __slots__ = ("check", "known_size", "origin", "path", "temporary")

    def __init__(
        self, path: str, origin: str, check: str, *, temporary: bool = False, known_size: int | None = None
    ) -> None:
        self.path = path
        self.origin = origin
        """Where the file came from, as a person would find it again: a URL, a path in an image, a path in /boot."""
        self.check = check
        """How its content was checked before use ("sha256 … listed in SHA256SUMS, …"), or why it was not."""
        self.temporary = temporary
        self.known_size = known_size

    @property
    def size(self) -> int:
        return os.path.getsize(self.path) if self.known_size is None else self.known_size

    def __repr__(self) -> str:
        return f"PlannedFile({self.path!r}, {self.origin!r}, {self.check!r})"


class OneShot:
    """A boot entry the firmware's next boot starts once: the running kernel's, in a boot loader kexec-bin drives.

    `grubenv`: the grubenv file (as seen on the machine) whose next_entry GRUB consumes; `entry`: what
    next_entry names (the entry's ids, '>'-separated through submenus, as grub-reboot takes it).
    """

    __slots__ = ("entry", "grubenv", "next_release", "release")

    def __init__(self, grubenv: str, entry: str, release: str, next_release: str | None = None) -> None:
        self.grubenv, self.entry, self.release, self.next_release = grubenv, entry, release, next_release


class WayBack:
    """How the plan boots and what returns the machine to this system if the next one fails.

    `panic_seconds`: the panic= this command added (None when the user's line sets it, or the way back
    is off); `lines`: the plan's lines (the path and why, each protection and why, or why there is none);
    `via`: kexec, or firmware (`firmware.boot` stages the files as a one-shot boot entry and reboots);
    built by `wayback.plan_way_back`.
    """

    __slots__ = ("lines", "one_shot", "panic_seconds", "via")

    def __init__(
        self, panic_seconds: int | None, lines: tuple[str, ...], one_shot: OneShot | None = None, via: str = "kexec"
    ) -> None:
        self.panic_seconds, self.lines, self.one_shot, self.via = panic_seconds, lines, one_shot, via


class BootPlan:
    """What to load and boot: a kernel, its initrds (loaded as one, in order) and its command line."""

    def __init__(
        self,
        title: str,
        kernel: PlannedFile,
        initrds: Sequence[PlannedFile] = (),
        cmdline: str = "",
        syscall: str = "auto",
        decisions: list[str] | None = None,
        warnings: list[str] | None = None,
        memory_needed: int = 0,
        options: Sequence[str] = (),
        way_back: WayBack | None = None,
    ) -> None:
        self.title = title
        self.kernel = kernel
        self.initrds = initrds
        self.cmdline = cmdline
        self.syscall = syscall
        """kexec_bin.load's syscall: "auto", "file" (kexec_file_load) or "load" (kexec_load)."""
        self.decisions = [] if decisions is None else decisions
        """How the plan was made, one line each ("console ttyS0,115200: the running kernel's last console=")."""
        self.warnings = [] if warnings is None else warnings
        self.memory_needed = memory_needed
        """Bytes the next system needs to start, beyond the files themselves (0: not estimated)."""
        self.options = options
        """Further kexec --load options the kernel needs (memdisk: --real-mode)."""
        self.way_back = way_back
        """What returns the machine to this system if the next one fails (see `wayback`)."""

    def to_text(self, program: str | None = None, available: int | None = None) -> str:
        """The plan for a person to read and check before anything is loaded.

        `available`: the memory the host has now (None: unknown). Every text that came from outside
        (an image's titles, a command line) is shown with its control characters escaped, so an
        escape sequence cannot hide a parameter from the person checking the plan.
        """
        lines = [f"plan: {shown(self.title)}"]
        for role, planned in [("kernel", self.kernel), *(("initrd", initrd) for initrd in self.initrds)]:
            where = f"(written for the load, from {planned.origin})" if planned.temporary else planned.path
            lines.append(f"  {role:<7} {shown(where)} ({size_text(planned.size)})")
            if not planned.temporary:
                lines.append(f"  {'':<7} from {shown(planned.origin)}")
            lines.append(f"  {'':<7} checked: {shown(planned.check)}")
        lines.append(f"  command line: {shown(self.cmdline) or '(empty)'}")
        lines += [f"  - {shown(decision)}" for decision in self.decisions]
        lines += [f"  way back: {shown(line)}" for line in self.way_back.lines] if self.way_back else []
        needed = self.memory_needed_in_total()
        if needed:
            lines.append(
                f"  memory: needs about {size_text(needed)}, "
                f"{size_text(available) if available is not None else 'unknown'} available"
            )
        if not (self.way_back and self.way_back.via == "firmware"):  # through the firmware no kexec runs
            joined = "<initrds joined>" if len(self.initrds) > 1 else None
            if joined is None and self.initrds and self.initrds[0].temporary:
                joined = "<initrd>"
            kernel = "<kernel>" if self.kernel.temporary else None
            command = [program or "kexec", *self.kexec_arguments(joined, kernel)]
            lines.append(f"  kexec command: {shown(' '.join(_quoted(word) for word in command))}")
        return "\n".join(lines)

    def warnings_text(self) -> str:
        """The plan's warnings, one line each, for standard error ("" when there are none)."""
        return "".join(f"kexec-bin: warning: {shown(warning)}\n" for warning in self.warnings)

    def initrd_for_kexec(self, joined: str | None) -> str | None:
        """The one initrd kexec is given: `joined` when several were made one, else the plan's own, else none."""
        return joined or (self.initrds[0].path if self.initrds else None)

    def kexec_arguments(self, joined_initrd: str | None = None, kernel: str | None = None) -> list[str]:
        """The kexec-tools command line that loads this plan (`joined_initrd`: several initrds made one;
        `kernel`: a name to show in place of the kernel's path)."""
        from ..api import load_arguments

        initrd = self.initrd_for_kexec(joined_initrd)
        arguments = load_arguments(self.kernel.path, initrd, self.cmdline, syscall=self.syscall, options=self.options)
        return [*arguments[:-1], kernel] if kernel else arguments

    def memory_needed_in_total(self) -> int:
        """Bytes the next system needs: its files and what it needs beyond them (0: not estimated)."""
        if not self.memory_needed:
            return 0
        return self.kernel.size + sum(initrd.size for initrd in self.initrds) + self.memory_needed


def size_text(count: int) -> str:
    """A byte count for people: MiB with one decimal."""
    return f"{count / (1 << 20):.1f} MiB"


# C0 and C1 control characters, DEL, and the invisible marks that reorder or hide text on a terminal.
_HIDDEN = [*range(0x20), *range(0x7F, 0xA0), *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _HIDDEN}
_ESCAPES.update({0x1B: "\\e", 0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})


def shown(text: str) -> str:
    """`text` safe to print on a terminal: every control character and invisible mark escaped (ESC as \\e)."""
    return text.translate(_ESCAPES)


def _quoted(word: str) -> str:
    import shlex

    return shlex.quote(word)
