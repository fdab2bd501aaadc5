"""Carrying a plan out, the same way for every story command: its options, the refusals that need
no download, the plan printed, the doctor's preflight, the load, and a clean boot.

`--root` has one meaning everywhere: the file tree of the machine being inspected (/proc, /sys,
/boot, /etc under it). A plan made under `--root` is only looked at: what cannot come from a tree
(the kernel `--load-only` and `--yes` would load into, the live network, the kexec program) is
this host's: the plan says so, and `--root` goes with `--dry-run` only.
"""

from __future__ import annotations

import os
import sys

from .. import ops
from ..errors import BlockedError, KexecBinError, PlanError, UsageError
from . import probes
from .model import BOOT, DRY_RUN, LOAD_ONLY, MODES, BootPlan, PlannedFile, size_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Callable, Sequence, TextIO

    from ..resolve import Choice

# The transient timer (and service) that boots the loaded kernel after a delay under systemd.
SYSTEMD_UNIT = "kexec-bin-reboot"


def add_story_options(parser: argparse.ArgumentParser, *, default_exec_after: float = 5.0) -> None:
    """The options every story command shares: plan only, load only, or load and boot; the delay; --root."""
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
        type=seconds,
        default=default_exec_after,
        metavar="SECONDS",
        help=f"with --yes, wait this long before booting (default {default_exec_after:g})",
    )
    parser.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="the machine to inspect, as a file tree (its /proc, /sys, /boot and /etc under DIR; "
        "default /: this machine); with --dry-run only: the kernel that would load is this host's",
    )
    from ..wayback import add_options

    add_options(parser)  # --via, --panic, --no-way-back, --deadline


def seconds(text: str) -> float:
    """--exec-after's value: a finite number of seconds, 0 or more."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds: give 0 or more (such as 5)")
    return value


def run_story(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a story command: first the refusals that need nothing downloaded or extracted, then `run`.

    A load on a host whose kernel refuses kexec is refused here, before any download; a plan that
    cannot be made on such a host says the kernel's reason first (not the plan's, which would send
    the user to fix the wrong thing).
    """
    if args.root != "/" and args.mode != DRY_RUN:
        raise UsageError(
            f"--root {args.root} with --{'yes' if args.mode == BOOT else 'load-only'}: a tree is only inspected, "
            "while the kernel that would load is this host's; drop --root to load here, or --dry-run to see the plan"
        )
    by_kexec = args.via == "kexec"  # through the firmware (--via firmware, or auto's choice) no kexec is refused
    if args.mode != DRY_RUN and by_kexec:
        blocked = refusal(args.root)
        if blocked:
            raise blocked
    try:
        return run(args)
    except PlanError as error:
        blocked = refusal(args.root) if args.mode == DRY_RUN and by_kexec else None  # a load was checked above
        if blocked is None:
            raise
        raise BlockedError(f"{blocked}\n  (and no plan could be made: {error})", blocked.support) from None


def refusal(root: str = "/", syscall: str = "auto", choice: Choice | None = None) -> BlockedError | None:
    """Why the kernel under `root` certainly refuses to load a kernel (`syscall`: the API's name) with
    `choice` (default: the program `kexec` would run, verified), or None.

    KEXEC_BIN_NO_CHECK=1 skips the check, as it does for `kexec`.
    """
    if ops.checks_skipped():
        return None
    from ..doctor import preflight

    try:
        preflight((ops.LOAD, ops.API_SYSCALLS[syscall]), choice, root)
    except BlockedError as error:
        return error
    return None


def carry_out(plan: BootPlan, mode: str, *, exec_after: float = 5.0, root: str = "/", out: TextIO | None = None) -> int:
    """Print `plan`; unless `mode` is DRY_RUN, load it, and in BOOT mode boot it cleanly. Return the exit status."""
    from ..resolve import choose

    out = out or sys.stdout  # looked up now: a caller (or pytest) may have replaced sys.stdout since import

    if mode not in MODES:
        raise PlanError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
    by_firmware = plan.way_back is not None and plan.way_back.via == "firmware"
    # Through the firmware no kexec program runs, so none is needed (a host may lack one).
    choice = None if by_firmware else choose()
    if not by_firmware:
        from ..trust import choose_syscall

        choose_syscall(plan, root)  # under lockdown: kexec_file_load, or a refusal before anything is loaded
    available = probes.available_memory(root)
    print(plan.to_text(choice.path if choice else None, available), file=out)
    if root != "/":
        print(
            f"  - --root {root}: the files and settings above were read from that tree; the kexec program and "
            "the kernel it would load into are this host's, and so is the live network state",
            file=out,
        )
    out.flush()  # the plan first, then its warnings, when both go to one terminal
    sys.stderr.write(plan.warnings_text())
    needed = plan.memory_needed_in_total()
    if needed and available is not None and needed > available:
        raise PlanError(
            f"not enough memory: the plan needs about {size_text(needed)} and {size_text(available)} is "
            "available (MemAvailable in /proc/meminfo); free memory or use a machine with more"
        )
    if mode == DRY_RUN:
        print("dry run: nothing loaded (--load-only loads it, --yes loads and boots it)", file=out)
        blocked = None if by_firmware else refusal(root, plan.syscall, choice)  # the program chosen above
        if blocked:
            raise BlockedError(f"this plan would be refused here: {blocked}", blocked.support)
        return 0
    if choice is None:  # the firmware path
        from .. import firmware

        return firmware.boot(plan, mode, root=root, out=out)
    import tempfile  # here and below: only loading and booting need these, not the plan a dry run prints

    with tempfile.TemporaryDirectory(prefix="kexec-bin-") as scratch:
        joined = _join(plan.initrds, scratch) if len(plan.initrds) > 1 else None
        from ..api import load

        load(
            plan.kernel.path,
            plan.initrd_for_kexec(joined),
            plan.cmdline,
            syscall=plan.syscall,
            options=plan.options,
            root=root,
        )
    from .. import wayback

    wayback.arm(plan.way_back, root, out)  # only once the load held: a refused load changes nothing
    print(f"loaded with {choice.path} ({choice.source})", file=out)
    if mode == LOAD_ONLY:
        print("boot it with `systemctl kexec` (or `kexec -e`); unload it with `kexec -u`", file=out)
        return 0
    return boot_loaded(delay=exec_after, root=root, out=out)


def boot_loaded(
    *, delay: float = 0, root: str = "/", out: TextIO | None = None, mounts: Sequence[Sequence[str]] | None = None
) -> int:
    """Boot the loaded kernel cleanly after `delay` seconds: through systemd when it is PID 1, else sync,
    remount read-only and exec (`mounts`: /proc/self/mounts' fields, read now when None).

    Under systemd this returns as soon as the boot is queued: a remote caller (ssh, Ansible's reboot
    module) gets the command's answer before systemd stops sshd and the connection drops. Without
    systemd, a `kexec -e` that fails leaves the file systems writable again, and says so.
    """
    out = out or sys.stdout
    if probes.systemd_runs(root):
        return _boot_through_systemd(delay, out)
    _countdown(delay, out)
    print("booting: no systemd; sync, remount every filesystem read-only, then kexec -e", file=out)
    out.flush()
    os.sync()
    made_read_only, busy = _remount(_writable_disks(probes.mounts() if mounts is None else mounts), "ro")
    if busy:
        # A filesystem still open for writing stays writable; it was synced, and the next kernel replays its journal.
        print(f"kexec-bin: stayed writable (synced): {', '.join(busy)}", file=sys.stderr)
    from ..api import execute

    try:
        execute(root=root)
    except KexecBinError as error:
        again, still = _remount(made_read_only[::-1], "rw")  # outermost first, as they were mounted
        note = f"; writable again: {', '.join(again)}" if again else ""
        if still:
            note += f"; STILL READ-ONLY: {', '.join(still)} (mount -o remount,rw {still[0]})"
        error.args = (f"{error}\n  the boot failed after the file systems were made read-only{note}",)
        raise
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


def _writable_disks(mounts: Sequence[Sequence[str]]) -> list[str]:
    """The mount points of `mounts` (/proc/self/mounts' fields) backed by a device and writable, innermost first."""
    return [
        mountpoint.encode().decode("unicode_escape")  # /proc/mounts escapes spaces as \040
        for source, mountpoint, _type, options, *_ in reversed(mounts)
        if source.startswith("/dev/") and "ro" not in options.split(",")
    ]


def _remount(mountpoints: Sequence[str], mode: str) -> tuple[list[str], list[str]]:
    """`mount -o remount,MODE` each of `mountpoints` in order; (those remounted, those that refused)."""
    import subprocess

    done: list[str] = []
    refused: list[str] = []
    for mountpoint in mountpoints:
        result = subprocess.run(["mount", "-o", f"remount,{mode}", mountpoint], capture_output=True, text=True)
        (done if result.returncode == 0 else refused).append(mountpoint)
    return done, refused


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
