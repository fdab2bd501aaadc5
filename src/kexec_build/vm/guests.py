"""Boot a Debian kernel of one target in qemu-system with the harness's initramfs.

A `Board` says how a target's guest is started (QEMU program and machine, console device,
Debian kernel flavour); `boot()` returns a `Machine` at the init's prompt, and `kexec_reboot()`
is the one step every proof repeats: load a kernel with a command line, execute it, and return
the command line the next kernel reports.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .. import recipes
from ..paths import build_dir, cache_dir
from ..testbed import debian_packages
from . import initramfs
from .machine import Machine, kvm_usable

# Deadlines under TCG on a loaded 2-core machine, with a wide margin (a boot takes 4-30 s).
BOOT_SECONDS = 180
COMMAND_SECONDS = 120
# The Debian installer's first screen at priority=low, and how long it may take to show it; it
# draws with escape codes and no newlines.
INSTALLER_MAIN_MENU = r"(?s)Debian installer main menu.*Choose the next step in the install process"
INSTALLER_SECONDS = 300
# kexec-tools' three ways to load: its default (kexec_file_load, then kexec_load), -s and -c.
LOAD_MODES = {"default": "", "file-load": "-s", "syscall-load": "-c"}
# A proof's guest reaches its next kernel by kexec only: a reset (a kexec'd kernel that crashed, or
# any fall back to the firmware) ends QEMU instead of booting the first kernel again, which would
# report the same command line as a --reuse-cmdline kexec.
NO_RESET = ("-no-reboot",)


@dataclass(frozen=True)
class Board:
    """How one target's guest runs: QEMU command, kernel console and Debian kernel flavour."""

    target: str
    qemu: tuple[str, ...]
    console: str
    flavour: str
    memory_mb: int = 1024
    load_options: str = ""
    """kexec --load options this board's kernel needs (each with its reason in BOARDS)."""
    suite: str = debian_packages.SUITE
    """The Debian release whose kernel and busybox the guest runs."""
    modes: tuple[str, ...] = ("default",)
    """The `LOAD_MODES` this board's kernel supports (each with its reason in BOARDS)."""

    @property
    def debian_arch(self) -> str:
        return recipes.load().target(self.target).debian_arch

    def kernel(self) -> Path:
        """The Debian kernel image of this board's flavour (the linux-image package, unpacked)."""
        tree = debian_packages.unpacked(f"linux-image-{self.flavour}", self.debian_arch, self.suite)
        (image,) = (tree / "boot").glob("vmlinu[xz]-*")
        return image

    def busybox(self) -> Path:
        tree = debian_packages.unpacked("busybox-static", self.debian_arch, self.suite)
        # Releases after bookworm ship it under the merged /usr.
        return next(path for path in (tree / "bin/busybox", tree / "usr/bin/busybox") if path.exists())

    def accelerator(self) -> str:
        if self.target == "x86_64" and kvm_usable(self.kernel(), cache_dir() / "vm"):
            return "kvm"
        return "tcg"


BOARDS = {
    board.target: board
    for board in (
        Board("x86_64", ("qemu-system-x86_64",), "ttyS0", "amd64", modes=tuple(LOAD_MODES)),
        # arm64's Debian kernel has no kexec_file_load, so only the paths that can work there.
        Board(
            "aarch64",
            ("qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57"),
            "ttyAMA0",
            "arm64",
            modes=("default", "syscall-load"),
        ),
        Board("i686", ("qemu-system-i386",), "ttyS0", "686"),
        # kexec-tools places the initrd right after the room it computes from the zImage header;
        # the armmp kernel then finds it overwritten ("invalid magic"): 64 MiB of room avoids that.
        Board(
            "armv7l",
            ("qemu-system-arm", "-M", "virt", "-cpu", "cortex-a15"),
            "ttyAMA0",
            "armmp",
            load_options="--image-size=0x4000000",
        ),
        Board("ppc64le", ("qemu-system-ppc64", "-M", "pseries"), "hvc0", "powerpc64le"),
        Board("s390x", ("qemu-system-s390x", "-M", "s390-ccw-virtio"), "ttysclp0", "s390x"),
        # bookworm has no riscv64 port; trixie, the first release with one, provides the kernel.
        Board("riscv64", ("qemu-system-riscv64", "-M", "virt"), "ttyS0", "riscv64", suite="trixie"),
    )
}
# Targets kexec-bin builds whose reboot no QEMU machine here can show, and why (docs/vm-proofs.md).
UNPROVEN = {
    "mips64el": "the 5kc-malta kernel refuses kexec_load (EINVAL): QEMU's malta SMP operations cannot park "
    "the other CPUs (kexec_nonboot_cpu)",
}


def boot(
    board: Board,
    kexec: Path,
    *,
    log: Path,
    workdir: Path,
    cmdline: str = "",
    files: dict[str, Path | bytes] | None = None,
    qemu_options: Sequence[str] = (),
) -> Machine:
    """Start `board`'s guest with `kexec` and `files` in its initramfs; return it at the init's prompt.

    The guest's own kernel is at /boot/vmlinuz, so it can kexec into itself.
    """
    image = initramfs.build(
        initramfs.guest_files(board.busybox(), kexec, {"boot/vmlinuz": board.kernel(), **(files or {})}),
        workdir / f"initramfs-{board.target}.cpio.gz",
    )
    return start(board, kernel=board.kernel(), initrd=image, cmdline=cmdline, log=log, qemu_options=qemu_options)


def start(
    board: Board, *, kernel: Path, initrd: Path, cmdline: str, log: Path, qemu_options: Sequence[str] = ()
) -> Machine:
    """Run QEMU on `kernel` and `initrd` with the board's console; return it at the init's prompt.

    QEMU's reset is left enabled: `reboot -f` goes back through the firmware, which loads the
    same kernel again.
    """
    boot = ["-kernel", str(kernel), "-initrd", str(initrd), "-append", f"console={board.console} {cmdline}".strip()]
    return start_ready(board, [*boot, *qemu_options], log, BOOT_SECONDS)


def start_ready(
    board: Board, qemu_options: Sequence[str], log: Path, seconds: float, memory_mb: int | None = None
) -> Machine:
    """Run `board`'s QEMU (its console on stdio, nothing else attached) with `qemu_options`; return it
    once its init reports VMTEST-READY within `seconds`."""
    command = [
        *board.qemu,
        "-accel",
        board.accelerator(),
        "-m",
        str(memory_mb or board.memory_mb),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        *qemu_options,
    ]
    machine = Machine(command, log)
    try:
        machine.expect("VMTEST-READY", seconds)
    except BaseException:
        machine.close()
        raise
    return machine


def kexec_load(machine: Machine, board: Board, options: str, cmdline: str | None) -> None:
    """Load this guest's kernel with the running root as initrd, `options` and the board's own load options.

    `cmdline` None passes no command line option (for `--reuse-cmdline` in `options`).
    """
    machine.run("next-initrd", COMMAND_SECONDS)
    line = "" if cmdline is None else f"--command-line={shlex.quote(f'console={board.console} {cmdline}')}"
    machine.run(
        f"kexec {options} {board.load_options} --load /boot/vmlinuz --initrd=/tmp/next.cpio {line}", COMMAND_SECONDS
    )


def kexec_reboot(machine: Machine, board: Board, options: str, cmdline: str | None) -> str:
    """`kexec_load`, then execute it; return the command line the new kernel reports."""
    kexec_load(machine, board, options, cmdline)
    return kexec_exec(machine)


def kexec_exec(machine: Machine) -> str:
    """Run `kexec --exec` on the loaded kernel; return the command line the next kernel's init reports."""
    # On success the status line never comes: the next kernel's init reports instead.
    machine.send('kexec --exec; echo "VMTEST-RC=$?"')
    outcome = machine.expect(r"VMTEST-CMDLINE: (.*)\n|VMTEST-RC=(\d+)", BOOT_SECONDS)
    if outcome.group(2) is not None:
        machine.fail(f"`kexec --exec` returned (status {outcome.group(2)}) instead of booting the loaded kernel")
    machine.expect("VMTEST-READY", COMMAND_SECONDS)
    return outcome.group(1)


def log_path(name: str) -> Path:
    """Where a guest's full console log is kept (build/vm-logs/, kept after the run)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return build_dir() / "vm-logs" / f"{safe}.log"
