"""`inv bench`'s reboot rows: kexec against a firmware reboot, measured in the same guest.

In one x86_64 guest per firmware, the time from typing `kexec -e` to the next kernel's first
console line is set against the time from `reboot -f` (a reset through the firmware, which loads
the same kernel again) to that same line.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..bench.measure import Row
from . import guests
from .binaries import kexec_from_wheel, wheel_for
from .debian_guest import SYSTEMD, debian_guest, disk_with, qemu_drives
from .machine import Machine

# The first line a Debian kernel prints on its serial console.
FIRST_LINE = r"Linux version \S+"
OVMF = Path("/usr/share/ovmf/OVMF.fd")
# How the next kernel is loaded: as kexec-tools does by default (its purgatory checks a sha256
# of every segment before jumping) and with -i, which skips that check for a faster reboot.
LOADS = {"kexec -e": "", "kexec -e (loaded with -i)": "-i"}
# pip under TCG: unpacking and byte-compiling the runtime takes a while.
PIP_SECONDS = 300


def firmwares() -> dict[str, list[str]]:
    """QEMU's options for each firmware to compare: SeaBIOS (its default), and OVMF when installed."""
    return {"SeaBIOS": []} | ({"OVMF": ["-bios", str(OVMF)]} if OVMF.exists() else {})


def seconds_to_first_line(machine: Machine, command: str) -> float:
    """Type `command` and time it until the next kernel's first console line."""
    started = time.monotonic()
    machine.send(command)
    machine.expect(FIRST_LINE, guests.BOOT_SECONDS)
    seconds = time.monotonic() - started
    machine.expect("VMTEST-READY", guests.BOOT_SECONDS)
    return seconds


def reboot_rows(work: Path) -> list[Row]:
    """kexec -e (as loaded by default, and with -i) against reboot -f through SeaBIOS, and OVMF if installed."""
    board = guests.BOARDS["x86_64"]
    rows = []
    for firmware, options in firmwares().items():
        machine = guests.boot(board, kexec_from_wheel(board.target), log=guests.log_path(f"bench-{firmware}"),
                              workdir=work, qemu_options=options)
        try:
            kexec = {}
            for name, load_options in LOADS.items():
                guests.kexec_load(machine, board, f"{load_options} --reuse-cmdline", None)
                kexec[name] = seconds_to_first_line(machine, "kexec -e")
            reset = seconds_to_first_line(machine, "reboot -f")
        finally:
            machine.close()
        rows += [
            Row(f"{name} vs reboot -f through {firmware} ({board.accelerator()}), to the kernel's first line",
                seconds, "s", "ratio < 1", seconds < reset, reset)
            for name, seconds in kexec.items()
        ]
    return rows


def story_reboot_rows(work: Path) -> list[Row]:
    """`kexec-bin reboot --yes` against `systemctl reboot` through each firmware, to the console prompt,
    in the systemd guest; and `kexec-bin reboot --dry-run` against `python3 -c pass` there."""
    guest = debian_guest(flavour=SYSTEMD)
    wheel = wheel_for("x86_64")
    board = guests.BOARDS["x86_64"]
    rows: list[Row] = []
    for firmware, options in firmwares().items():
        # Reset stays enabled: `systemctl reboot` goes through the firmware, which loads the kernel again.
        machine = guests.start(board, kernel=guest.kernel, initrd=guest.initrd, cmdline=guest.cmdline(),
                               log=guests.log_path(f"bench-story-reboot-{firmware}"),
                               qemu_options=[*qemu_drives(guest, disk_with([wheel], work / f"wheels-{firmware}.ext4")),
                                             *options])
        try:
            machine.run(f"pip install --no-index --break-system-packages /mnt/{wheel.name}", PIP_SECONDS)
            if not rows:
                rows.append(_dry_run_row(machine))
            # The same kernel both ways, so only the path to it differs.
            kexec = seconds_to_prompt(machine, f"kexec-bin reboot --kernel {guest.version} --yes --exec-after 0")
            reset = seconds_to_prompt(machine, "systemctl reboot")
        finally:
            machine.close()
        rows.append(Row(f"kexec-bin reboot --yes vs systemctl reboot through {firmware} ({board.accelerator()}), "
                        "to the console prompt", kexec, "s", "ratio < 1", kexec < reset, reset))
    return rows


def seconds_to_prompt(machine: Machine, command: str) -> float:
    """Type `command` and time it until the next boot's console loop (the guest's login prompt) is up."""
    started = time.monotonic()
    machine.send(command)
    machine.expect("VMTEST-READY", guests.BOOT_SECONDS)
    return time.monotonic() - started


# Best of 5 runs of each, timed in the guest so the console's delays are not counted (one line:
# the console loop reads one command a line).
DRY_RUN_TIMING = (
    "python3 -c 'import subprocess, time; "
    "best = lambda command: min((lambda started: (subprocess.run(command, check=True, stdout=subprocess.DEVNULL), "
    "time.perf_counter() - started)[1])(time.perf_counter()) for _ in range(5)); "
    "print(\"TIMES\", best([\"kexec-bin\", \"reboot\", \"--dry-run\"]), best([\"python3\", \"-c\", \"pass\"]))'"
)


def _dry_run_row(machine: Machine) -> Row:
    ours, bare = (float(word) for word in machine.run(DRY_RUN_TIMING, PIP_SECONDS).split("TIMES")[1].split())
    return Row("kexec-bin reboot --dry-run vs python3 -c pass (in the guest)", ours, "s", "ratio <= 3",
               ours <= 3 * bare, bare)
