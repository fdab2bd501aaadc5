"""A boot plan: the one way the story commands (`reboot`, `netboot`, `iso`) load and boot a kernel.

The commands differ only in where the kernel comes from. Each builds a `BootPlan` (the files, each
with where it came from and how it was checked, and the command line), and `carry_out` does the
rest the same way for all of them: print the plan, stop there unless asked to go on, run the
doctor's preflight through the same program `kexec` would run, load, and boot cleanly.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Sequence, TextIO

from .errors import PlanError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .wayback import WayBack

# What the user asked for: print the plan only, load it and leave `kexec -e` to them, or boot it.
DRY_RUN, LOAD_ONLY, BOOT = "dry-run", "load-only", "boot"
MODES = (DRY_RUN, LOAD_ONLY, BOOT)


@dataclass(frozen=True)
class PlannedFile:
    """One file the plan loads: where kexec reads it, where it came from, and how it was checked."""

    path: str
    origin: str
    """Where the file came from, as a person would find it again: a URL, a path in an image, a path in /boot."""
    check: str
    """How its content was checked before use ("sha256 … listed in SHA256SUMS, …"), or why it was not."""

    @property
    def size(self) -> int:
        return os.path.getsize(self.path)


@dataclass
class BootPlan:
    """What to load and boot: a kernel, its initrds (loaded as one, in order) and its command line."""

    title: str
    kernel: PlannedFile
    initrds: Sequence[PlannedFile] = ()
    cmdline: str = ""
    syscall: str = "auto"
    """kexec_bin.load's syscall: "auto", "file" (kexec_file_load) or "load" (kexec_load)."""
    decisions: list[str] = field(default_factory=list)
    """How the plan was made, one line each ("console ttyS0,115200: the running kernel's last console=")."""
    warnings: list[str] = field(default_factory=list)
    memory_needed: int = 0
    """Bytes the next system needs to start, beyond the files themselves (0: not estimated)."""
    options: Sequence[str] = ()
    """Further kexec --load options the kernel needs (memdisk: --real-mode)."""
    way_back: WayBack | None = None
    """What returns the machine to this system if the next one fails (see `wayback`)."""

    def to_text(self, program: str | None = None, root: str = "/") -> str:
        """The plan for a person to read and check before anything is loaded."""
        lines = [f"plan: {self.title}"]
        for role, planned in [("kernel", self.kernel), *(("initrd", initrd) for initrd in self.initrds)]:
            lines.append(f"  {role:<7} {planned.path} ({size_text(planned.size)})")
            lines.append(f"  {'':<7} from {planned.origin}")
            lines.append(f"  {'':<7} checked: {planned.check}")
        lines.append(f"  command line: {self.cmdline or '(empty)'}")
        lines += [f"  - {decision}" for decision in self.decisions]
        lines += [self.way_back.text()] if self.way_back else []
        needed, available = self.memory(root)
        if needed:
            lines.append(
                f"  memory: needs about {size_text(needed)}, "
                f"{size_text(available) if available is not None else 'unknown'} available"
            )
        command = [program or "kexec", *self.kexec_arguments("<initrds joined>" if len(self.initrds) > 1 else None)]
        lines.append(f"  kexec command: {' '.join(_quoted(word) for word in command)}")
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)

    def initrd_for_kexec(self, joined: str | None) -> str | None:
        """The one initrd kexec is given: `joined` when several were made one, else the plan's own, else none."""
        return joined or (self.initrds[0].path if self.initrds else None)

    def kexec_arguments(self, joined_initrd: str | None = None) -> list[str]:
        """The kexec-tools command line that loads this plan (`joined_initrd`: several initrds made one)."""
        from .api import load_arguments

        initrd = self.initrd_for_kexec(joined_initrd)
        return load_arguments(self.kernel.path, initrd, self.cmdline, syscall=self.syscall, options=self.options)

    def memory(self, root: str = "/") -> tuple[int, int | None]:
        """(bytes the next system needs, bytes available now or None when <root>/proc/meminfo does not say)."""
        if not self.memory_needed:
            return 0, available_memory(root)
        files = self.kernel.size + sum(initrd.size for initrd in self.initrds)
        return files + self.memory_needed, available_memory(root)


def carry_out(plan: BootPlan, mode: str, *, exec_after: float = 5.0, root: str = "/", out: TextIO | None = None) -> int:
    """Print `plan`; unless `mode` is DRY_RUN, load it, and in BOOT mode boot it cleanly. Return the exit status."""
    from .resolve import choose

    out = out or sys.stdout  # looked up now: a caller (or pytest) may have replaced sys.stdout since import

    if mode not in MODES:
        raise PlanError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
    choice = choose()
    print(plan.to_text(choice.path, root), file=out)
    needed, available = plan.memory(root)
    if needed and available is not None and needed > available:
        raise PlanError(
            f"not enough memory: the plan needs about {size_text(needed)} and {size_text(available)} is "
            "available (MemAvailable in /proc/meminfo); free memory or use a machine with more"
        )
    if mode == DRY_RUN:
        print("dry run: nothing loaded (--load-only loads it, --yes loads and boots it)", file=out)
        return 0
    if plan.way_back and plan.way_back.via == "firmware":
        from . import firmware

        return firmware.boot(plan, mode, root=root, out=out)
    import tempfile  # here and below: only loading and booting need these, not the plan a dry run prints

    with tempfile.TemporaryDirectory(prefix="kexec-bin-") as scratch:
        joined = _join(plan.initrds, scratch) if len(plan.initrds) > 1 else None
        from . import wayback
        from .api import load

        load(
            plan.kernel.path,
            plan.initrd_for_kexec(joined),
            plan.cmdline,
            syscall=plan.syscall,
            options=plan.options,
            root=root,
        )
    wayback.arm(plan.way_back, root, out)
    print(f"loaded with {choice.path} ({choice.source})", file=out)
    if mode == LOAD_ONLY:
        print("boot it with `systemctl kexec` (or `kexec -e`); unload it with `kexec -u`", file=out)
        return 0
    return boot_loaded(delay=exec_after, root=root, out=out)


# The transient timer (and service) that boots the loaded kernel after a delay under systemd.
SYSTEMD_UNIT = "kexec-bin-reboot"


def boot_loaded(*, delay: float = 0, root: str = "/", out: TextIO | None = None) -> int:
    """Boot the loaded kernel cleanly after `delay` seconds: through systemd when it is PID 1, else sync,
    remount read-only and exec.

    Under systemd this returns as soon as the boot is queued: a remote caller (ssh, Ansible's reboot
    module) gets the command's answer before systemd stops sshd and the connection drops.
    """
    out = out or sys.stdout
    if systemd_runs(root):
        return _boot_through_systemd(delay, out)
    _countdown(delay, out)
    print("booting: no systemd; sync, remount every filesystem read-only, then kexec -e", file=out)
    out.flush()
    os.sync()
    _remount_read_only()
    from .api import execute

    execute(root=root)
    return 0  # not reached: execute() boots or raises


def _boot_through_systemd(delay: float, out: TextIO) -> int:
    """`systemctl kexec`, now or from a transient timer; systemd boots the kernel already loaded.

    `systemctl kexec` queues the job and returns (it never waits for a shutdown), and it loads a
    Boot Loader Specification entry only when no kernel is loaded.
    """
    import subprocess

    if delay <= 0:
        print("booting: systemctl kexec (systemd stops the services and unmounts the file systems)", file=out)
        out.flush()
        return subprocess.run(["systemctl", "kexec"]).returncode
    command = [
        "systemd-run",
        f"--unit={SYSTEMD_UNIT}",
        "--description=kexec-bin: boot the loaded kernel",
        f"--on-active={delay:g}s",
        "--timer-property=AccuracySec=100ms",
        "--quiet",
        "systemctl",
        "kexec",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise PlanError(
            f"{' '.join(command)} failed: {(result.stdout + result.stderr).strip()}; "
            "the kernel stays loaded: boot it with `systemctl kexec`, or unload it with `kexec -u`"
        )
    print(
        f"booting in {delay:g} s: systemd runs `systemctl kexec` (it stops the services and unmounts the file "
        f"systems); cancel with `systemctl stop {SYSTEMD_UNIT}.timer` (`kexec -u` unloads the kernel)",
        file=out,
    )
    return 0


def systemd_runs(root: str = "/") -> bool:
    """Whether systemd is PID 1 (sd_booted()'s test: /run/systemd/system exists)."""
    return os.path.isdir(os.path.join(root, "run/systemd/system"))


def available_memory(root: str = "/") -> int | None:
    """MemAvailable from /proc/meminfo, in bytes; None when the kernel does not publish it."""
    try:
        with open(os.path.join(root, "proc/meminfo"), encoding="ascii", errors="replace") as file:
            for line in file:
                name, _, value = line.partition(":")
                if name == "MemAvailable":
                    return int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _remount_read_only() -> None:
    """Remount each disk-backed filesystem read-only, innermost first, so their journals are clean."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as file:
            mounts = [line.split() for line in file]
    except OSError:
        mounts = []
    import subprocess

    busy = []
    for source, mountpoint, _type, options, *_ in reversed(mounts):
        if not source.startswith("/dev/") or "ro" in options.split(","):
            continue
        mountpoint = mountpoint.encode().decode("unicode_escape")  # /proc/mounts escapes spaces as \040
        result = subprocess.run(["mount", "-o", "remount,ro", mountpoint], capture_output=True, text=True)
        if result.returncode != 0:
            busy.append(mountpoint)
    if busy:
        # A filesystem still open for writing stays writable; it was synced, and the next kernel replays its journal.
        print(f"kexec-bin: stayed writable (synced): {', '.join(busy)}", file=sys.stderr)


def _countdown(seconds: float, out: TextIO) -> None:
    if seconds <= 0:
        return
    print(f"booting in {seconds:g} s: Ctrl-C cancels (the kernel stays loaded; `kexec -u` unloads it)", file=out)
    out.flush()
    import time

    time.sleep(seconds)


def _join(initrds: Sequence[PlannedFile], scratch: str) -> str:
    """Several initrds as one file, in order: the kernel unpacks concatenated (compressed) cpio archives."""
    import shutil

    joined = os.path.join(scratch, "initrd")
    with open(joined, "wb") as target:
        for initrd in initrds:
            with open(initrd.path, "rb") as source:
                shutil.copyfileobj(source, target, 1 << 20)
    return joined


def size_text(count: int) -> str:
    """A byte count for people: MiB with one decimal."""
    return f"{count / (1 << 20):.1f} MiB"


def _quoted(word: str) -> str:
    import shlex

    return shlex.quote(word)


def add_mode_options(parser: argparse.ArgumentParser, *, default_exec_after: float = 5.0) -> None:
    """The options every story command shares: plan only, load only, or load and boot."""
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--dry-run", dest="mode", action="store_const", const=DRY_RUN, help="print the plan and stop (the default)"
    )
    modes.add_argument(
        "--load-only",
        dest="mode",
        action="store_const",
        const=LOAD_ONLY,
        help="load the kernel and leave the boot to `systemctl kexec` or `kexec -e`",
    )
    modes.add_argument(
        "--yes",
        dest="mode",
        action="store_const",
        const=BOOT,
        help="load the kernel and boot it after --exec-after seconds",
    )
    parser.set_defaults(mode=DRY_RUN)
    parser.add_argument(
        "--exec-after",
        type=float,
        default=default_exec_after,
        metavar="SECONDS",
        help=f"with --yes, wait this long before booting (default {default_exec_after:g})",
    )
    from .wayback import add_options

    add_options(parser)


def console_parameters(spec: str, root: str = "/") -> tuple[list[str], str]:
    """The `console=` parameters for the next kernel from `--console` (auto, none, DEV[,SPEED]), and why.

    auto keeps the running kernel's consoles: its `console=` parameters in order (the last one owns
    /dev/console), else the devices in /sys/class/tty/console/active.
    """
    if spec == "none":
        return [], "console: none (--console none)"
    if spec != "auto":
        device = spec[len("/dev/") :] if spec.startswith("/dev/") else spec
        if not device or "/" in device or " " in device:
            raise PlanError(f"--console {spec!r}: give a device name such as ttyS0 or ttyS0,115200, or auto, or none")
        return [f"console={device}"], f"console {device}: --console"
    cmdline = _read_text(os.path.join(root, "proc/cmdline"))
    given = [word for word in cmdline.split() if word.startswith("console=")]
    if given:
        return given, f"{' '.join(given)}: the running kernel's command line (/proc/cmdline)"
    active = _read_text(os.path.join(root, "sys/class/tty/console/active")).split()
    if active:
        return [
            f"console={device}" for device in active
        ], f"console {' '.join(active)}: the running kernel's consoles (/sys/class/tty/console/active)"
    return [], "console: none found (no console= in /proc/cmdline, no /sys/class/tty/console/active)"


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read(64 * 1024)
    except OSError:
        return ""
