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
from .binaries import kexec_from_wheel
from .machine import Machine

# The first line a Debian kernel prints on its serial console.
FIRST_LINE = r"Linux version \S+"
OVMF = Path("/usr/share/ovmf/OVMF.fd")
# How the next kernel is loaded: as kexec-tools does by default (its purgatory checks a sha256
# of every segment before jumping) and with -i, which skips that check for a faster reboot.
LOADS = {"kexec -e": "", "kexec -e (loaded with -i)": "-i"}


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
    firmwares: dict[str, list[str]] = {"SeaBIOS": []} | ({"OVMF": ["-bios", str(OVMF)]} if OVMF.exists() else {})
    rows = []
    for firmware, options in firmwares.items():
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
