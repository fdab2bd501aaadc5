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
from .debian_guest import SYSTEMD, debian_guest, start_logged, start_with_wheel
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
        machine = guests.boot(
            board,
            kexec_from_wheel(board.target),
            log=guests.log_path(f"bench-{firmware}"),
            workdir=work,
            qemu_options=options,
        )
        try:
            kexec = {}
            for name, load_options in LOADS.items():
                guests.kexec_load(machine, board, f"{load_options} --reuse-cmdline", None)
                kexec[name] = seconds_to_first_line(machine, "kexec -e")
            reset = seconds_to_first_line(machine, "reboot -f")
        finally:
            machine.close()
        rows += [
            Row(
                f"{name} vs reboot -f through {firmware} ({board.accelerator()}), to the kernel's first line",
                seconds,
                "s",
                "ratio < 1",
                seconds < reset,
                reset,
            )
            for name, seconds in kexec.items()
        ]
    return rows


def story_reboot_rows(work: Path) -> list[Row]:
    """`kexec-bin reboot --yes` against `systemctl reboot` through each firmware, to the console prompt,
    in the systemd guest; and `kexec-bin reboot --dry-run` against `python3 -c pass` there."""
    guest = debian_guest(flavour=SYSTEMD)
    board = guests.BOARDS["x86_64"]
    rows: list[Row] = []
    for firmware, options in firmwares().items():
        folder = work / f"story-reboot-{firmware}"
        folder.mkdir()
        # Reset stays enabled: `systemctl reboot` goes through the firmware, which loads the kernel again.
        machine, wheel = start_with_wheel(
            start_logged(guests.log_path(f"bench-story-reboot-{firmware}")),
            folder,
            flavour=SYSTEMD,
            qemu_options=options,
        )
        try:
            machine.run(f"pip install --no-index --break-system-packages /mnt/{wheel}", PIP_SECONDS)
            if not rows:
                rows.append(_dry_run_row(machine))
            # The same kernel both ways, so only the path to it differs.
            kexec = seconds_to_prompt(machine, f"kexec-bin reboot --kernel {guest.version} --yes --exec-after 0")
            reset = seconds_to_prompt(machine, "systemctl reboot")
        finally:
            machine.close()
        rows.append(
            Row(
                f"kexec-bin reboot --yes vs systemctl reboot through {firmware} ({board.accelerator()}), "
                "to the console prompt",
                kexec,
                "s",
                "ratio < 1",
                kexec < reset,
                reset,
            )
        )
    return rows


# The way back's row: panic=1, so the row shows what the firmware path back costs beyond the delay asked for.
WAY_BACK_PANIC = 1
WAY_BACK_GOAL = 1.5  # a panic's way back may cost at most half again a plain firmware reboot


def way_back_rows(work: Path) -> list[Row]:
    """From a panic in the new kernel (no initrd: it cannot mount root) to the original system's prompt, against
    `reboot -f` to the same prompt, in the same systemd guest through SeaBIOS."""
    guest = debian_guest(flavour=SYSTEMD)
    newer = guest.versions[-1]
    machine, wheel = start_with_wheel(start_logged(guests.log_path("bench-way-back")), work, flavour=SYSTEMD)
    try:
        machine.run(f"pip install --no-index --break-system-packages /mnt/{wheel}", PIP_SECONDS)
        machine.send(f"kexec-bin reboot --kernel {newer} --initrd none --panic {WAY_BACK_PANIC} --yes --exec-after 0")
        machine.expect("Kernel panic - not syncing", guests.BOOT_SECONDS)
        started = time.monotonic()
        machine.expect("VMTEST-READY", guests.BOOT_SECONDS)
        back = time.monotonic() - started
        reset = seconds_to_prompt(machine, "reboot -f")
    finally:
        machine.close()
    accelerator = guests.BOARDS["x86_64"].accelerator()
    return [
        Row(
            f"way back: panic (panic={WAY_BACK_PANIC}) to the old system's prompt vs reboot -f ({accelerator})",
            back,
            "s",
            f"ratio <= {WAY_BACK_GOAL}",
            back <= WAY_BACK_GOAL * reset,
            reset,
        )
    ]


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
    'print("TIMES", best(["kexec-bin", "reboot", "--dry-run"]), best(["python3", "-c", "pass"]))\''
)


def _dry_run_row(machine: Machine) -> Row:
    ours, bare = (float(word) for word in machine.run(DRY_RUN_TIMING, PIP_SECONDS).split("TIMES")[1].split())
    return Row(
        "kexec-bin reboot --dry-run vs python3 -c pass (in the guest)", ours, "s", "ratio <= 3", ours <= 3 * bare, bare
    )


NETBOOT_IMAGES = "dists/bookworm/main/installer-amd64/current/images"
NETBOOT_GOAL = 1.10  # the safe command may cost at most a tenth more than the bare manual steps


def netboot_rows(work: Path) -> list[Row]:
    """`kexec-bin netboot --yes` (files cached) against the manual way (fetch, sha256sum -c, kexec
    --load, kexec -e) to the installer's main menu, each in a fresh copy of the same guest."""
    from ..testbed import netboot_mirror
    from .debian_guest import USER_NET_HOST, USER_NIC, set_static_address, start_logged, start_with_wheel

    files = netboot_mirror.files("bookworm", "amd64")
    netboot = "netboot/debian-installer/amd64"
    # The two SHA256SUMS lines `sha256sum -c` checks, with paths relative to the download folder.
    sums = files[f"{NETBOOT_IMAGES}/SHA256SUMS"].decode().splitlines()
    checks = "\\n".join(
        line.replace(f"./{netboot}/", "")
        for line in sums
        if line.split()[-1] in (f"./{netboot}/linux", f"./{netboot}/initrd.gz")
    )
    seconds = {}
    with netboot_mirror.serve(files) as served:
        mirror = served.replace("127.0.0.1", USER_NET_HOST)
        images = f"{mirror}/{NETBOOT_IMAGES}/{netboot}"
        ours = f"kexec-bin netboot debian --mirror {mirror} --release bookworm --network dhcp --append priority=low"
        manual = (
            f"python3 -c \"import urllib.request as r; r.urlretrieve('{images}/linux', 'linux'); "
            f"r.urlretrieve('{images}/initrd.gz', 'initrd.gz')\" && printf '{checks}\\n' | sha256sum -c && "
            "kexec --load linux --initrd=initrd.gz --command-line='console=ttyS0 priority=low' && kexec -e"
        )
        for way, prepare, command in (
            ("netboot", f"{ours} --dry-run", f"{ours} --yes --exec-after 0"),
            ("manual", "true", manual),
        ):
            folder = work / way
            folder.mkdir()
            machine, wheel = start_with_wheel(
                start_logged(guests.log_path(f"bench-netboot-{way}")), folder, qemu_options=USER_NIC
            )
            try:
                set_static_address(machine, "10.0.2.15")
                machine.run(f"pip install --no-index --break-system-packages /mnt/{wheel} && cd /root", 300)
                machine.run(prepare, guests.INSTALLER_SECONDS)  # ours: fill the download cache
                started = time.monotonic()
                machine.send(command)
                machine.expect(guests.INSTALLER_MAIN_MENU, guests.INSTALLER_SECONDS)
                seconds[way] = time.monotonic() - started
            finally:
                machine.close()
    return [
        Row(
            "netboot --yes (cached) vs fetch + sha256sum + kexec by hand, to the installer's main menu",
            seconds["netboot"],
            "s",
            f"ratio <= {NETBOOT_GOAL:.2f}",
            seconds["netboot"] <= NETBOOT_GOAL * seconds["manual"],
            seconds["manual"],
        )
    ]
