"""The way back, for real: a systemd Debian guest kexecs into kernels that fail, and the firmware brings it home.

Unlike the other story tests, these guests may reset: QEMU's reset runs the firmware again. Most
start through a real GRUB (see `grub_guest`), so a reset goes through GRUB's menu and grubenv as on
an installed PC; the watchdog's guest starts on QEMU's -kernel, which a reset boots again. A guest
back at its console loop with the first boot's command line came back through the firmware.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Sequence

import pytest

from kexec_build.errors import GuestError
from kexec_build.testbed import netboot_mirror
from kexec_build.vm import guests
from kexec_build.vm.binaries import wheel_for
from kexec_build.vm.debian_guest import (
    SYSTEMD,
    USER_NET_HOST,
    USER_NIC,
    debian_guest,
    disk_with,
    pip_install,
    qemu_drives,
    start_logged,
    start_with_wheel,
)
from kexec_build.vm.grub_guest import FSTAB_LINE, boot_disk, entry_id, grub_kernel
from kexec_build.vm.guests import BOOT_SECONDS, COMMAND_SECONDS, log_path
from kexec_build.vm.machine import Machine

pytestmark = pytest.mark.vm

# The panic= the tests arm: short, so a failed boot comes back quickly.
PANIC_SECONDS = 3


def back_at_console(machine: Machine) -> tuple[str, float]:
    """Wait for a (re)started guest's console loop; return the command line it reports and when it was ready."""
    cmdline = machine.expect(r"VMTEST-CMDLINE: (.*)\n", BOOT_SECONDS).group(1)
    machine.expect("VMTEST-READY", COMMAND_SECONDS)
    return cmdline, time.monotonic()


def start_through_grub(
    request, folder, *, next_entry: str | None = None, qemu_options: Sequence[str] = ()
) -> tuple[Machine, str]:
    """The systemd guest started by the firmware through GRUB, its /boot on a disk of its own (mounted from
    fstab from the next boot on), the wheel installed; GRUB's grubenv holds `next_entry` for the first boot."""
    guest = debian_guest(flavour=SYSTEMD)
    nonce = secrets.token_hex(8)
    wheel = wheel_for("x86_64")
    disks = [
        disk_with([wheel], folder / "wheels.ext4"),
        boot_disk(guest, folder, cmdline=f"vmtest.nonce={nonce}", next_entry=next_entry),
    ]
    machine = guests.start(
        guests.BOARDS["x86_64"],
        kernel=grub_kernel(folder),
        initrd=guest.initrd,  # not read: GRUB loads the initrd its menu names
        cmdline="",
        log=log_path(request.node.name),
        qemu_options=[*qemu_drives(guest, *disks), *qemu_options],
    )
    try:
        machine.run(f"echo '{FSTAB_LINE}' >> /etc/fstab && mount /boot")
        pip_install(machine, f"/mnt/{wheel.name}")
    except BaseException:
        machine.close()
        raise
    return machine, nonce


def test_reboot_into_a_kernel_that_panics_comes_back_and_a_good_one_stays(request, tmp_path):
    running, newer = debian_guest(flavour=SYSTEMD).versions
    # As after a kernel upgrade: GRUB's default is the newer kernel; this boot ran the older one once.
    machine, nonce = start_through_grub(request, tmp_path, next_entry=entry_id(running))
    try:
        assert machine.run("uname -r") == running
        one_shot = f"way back: one-shot GRUB entry {entry_id(running)!r} (the running kernel {running})"

        # The default kernel fails twice, each time before mounting root: without an initrd the kernel
        # itself panics; with the running kernel's initrd (modules of another release) initramfs-tools
        # gives up waiting for the root disk and honours panic= with reboot -f. Each time the firmware
        # starts GRUB, and GRUB boots the one-shot entry: the kernel that ran the command.
        seconds = {}
        for failure, options, message in (
            ("kernel panic", "--initrd none", "Kernel panic - not syncing"),
            ("initramfs panic", f"--initrd /boot/initrd.img-{running} --append rootdelay=2", "Rebooting automatically"),
        ):
            answer = machine.run(
                f"kexec-bin reboot {options} --panic {PANIC_SECONDS} --yes --exec-after 1", COMMAND_SECONDS
            )
            assert f"plan: reboot into {newer}" in answer and one_shot in answer
            machine.expect(message, BOOT_SECONDS)
            panicked = time.monotonic()
            machine.expect(re.escape(f"GRUB: booting {running}"), BOOT_SECONDS)
            cmdline, ready = back_at_console(machine)
            seconds[failure] = ready - panicked
            assert f"vmtest.nonce={nonce}" in cmdline and "panic=" not in cmdline
            assert machine.run("uname -r") == running
            # GRUB consumed the one-shot entry as it booted it.
            assert machine.run("grep -a '^next_entry=' /boot/grub/grubenv") == "next_entry="

        # The default kernel as it is: it comes up, confirms, and clears the one-shot entry.
        answer = machine.run("kexec-bin reboot --yes --exec-after 1", COMMAND_SECONDS)
        assert one_shot in answer
        back_at_console(machine)
        assert machine.run("uname -r") == newer
        machine.run("systemctl is-system-running --wait || true", BOOT_SECONDS)
        assert "this boot is confirmed" in machine.run("journalctl -b -u kexec-bin-confirm -o cat")
        assert machine.run("grep -ac '^next_entry=gnulinux' /boot/grub/grubenv || true") == "0"
        assert machine.run("ls /etc/systemd/system/ | grep -c kexec-bin-confirm || true") == "0"

        # A further firmware reboot: no one-shot entry left, GRUB boots its default, the newer kernel.
        machine.send("systemctl reboot")
        machine.expect("reboot: Restarting system", BOOT_SECONDS)
        reset = time.monotonic()
        machine.expect(re.escape(f"GRUB: booting {newer}"), BOOT_SECONDS)
        _, ready = back_at_console(machine)
        assert machine.run("uname -r") == newer
        print(
            f"\nway back (panic={PANIC_SECONDS}, {guests.BOARDS['x86_64'].accelerator()}), from the failure to the "
            f"old system's console: {', '.join(f'{name} {value:.1f} s' for name, value in seconds.items())}; "
            f"a firmware reboot from the reset to the console: {ready - reset:.1f} s"
        )
    finally:
        machine.close()


# A test deadline: short, so the installer that cannot reach its mirror comes back quickly. The
# installer runs with auto=true, which configures the network before asking anything (else it would
# wait at its language question, network down, until the deadline).
DEADLINE_MINUTES = 1
# netcfg's static answers for an address on a subnet QEMU's network does not route.
WRONG_SUBNET = (
    "netcfg/disable_autoconfig=true netcfg/get_ipaddress=192.168.77.5 netcfg/get_netmask=255.255.255.0 "
    "netcfg/get_gateway=192.168.77.1 netcfg/get_nameservers=192.168.77.1 netcfg/confirm_static=true"
)
NETBOOT_SECONDS = 600


def test_netboot_via_firmware_where_kexec_is_off_and_the_deadline_brings_it_back(request, tmp_path, httpserver):
    for path, data in netboot_mirror.files("bookworm", "amd64").items():
        httpserver.expect_request(f"/debian/{path}").respond_with_data(data, content_type="application/octet-stream")
    mirror = f"http://{USER_NET_HOST}:{httpserver.port}/debian"
    _running, newer = debian_guest(flavour=SYSTEMD).versions
    machine, nonce = start_through_grub(request, tmp_path, qemu_options=USER_NIC)
    try:
        assert machine.run("uname -r") == newer
        machine.run("sysctl -w kernel.kexec_load_disabled=1")
        netboot = (
            f"kexec-bin netboot debian --mirror {mirror} --release bookworm --network dhcp --via auto "
            f"--deadline {DEADLINE_MINUTES} --yes --append 'auto=true priority=critical"
        )

        # A network that cannot work: the installer never reaches its mirror, and the deadline reboots it.
        machine.send(f"{netboot} {WRONG_SUBNET}'")
        plan = machine.expect(r"(?s)plan: Debian 12.*?staged: [^\n]*\n", NETBOOT_SECONDS).group()
        assert "way back: path: firmware (the doctor predicts kexec cannot load here: kexec_load_disabled" in plan
        assert f"deadline: unless the installer fetches {mirror}/dists/bookworm/" in plan
        machine.expect("kexec-bin: booting the staged kernel once", BOOT_SECONDS)  # GRUB, the one-shot entry
        machine.expect("kexec-bin: deadline: no network within 1 min; rebooting into the old system", BOOT_SECONDS * 2)
        machine.expect(re.escape(f"GRUB: booting {newer}"), BOOT_SECONDS)  # the firmware, GRUB's default again
        cmdline, _ = back_at_console(machine)
        assert f"vmtest.nonce={nonce}" in cmdline and machine.run("uname -r") == newer
        # This system's next boot removed the staged entry and files.
        machine.run("systemctl is-system-running --wait || true", BOOT_SECONDS)
        assert machine.run("ls /boot/grub/custom.cfg /boot/kexec-bin 2>/dev/null | wc -l") == "0"

        # A network that works: the installer fetches from its mirror and the deadline disarms itself.
        machine.run("sysctl -w kernel.kexec_load_disabled=1")  # the reboot switched it back on
        machine.send(f"{netboot}'")
        machine.expect("kexec-bin: booting the staged kernel once", NETBOOT_SECONDS)
        machine.expect("kexec-bin: network up: deadline disarmed", BOOT_SECONDS * 2)
        with pytest.raises(GuestError, match="did not appear"):
            machine.expect("rebooting into the old system", DEADLINE_MINUTES * 60 + 30)
    finally:
        machine.close()


# QEMU's i6300esb, whose expiry resets the machine through the firmware.
WATCHDOG = ("-device", "i6300esb", "-action", "watchdog=reset")
# A short heartbeat for the running kernel's driver to program (the hardware keeps it across kexec);
# a reset comes within two of them, which the control case waits out.
HEARTBEAT_SECONDS = 10
WATCHDOG_SECONDS = 60


@pytest.mark.parametrize("keeps_running", [True, False], ids=["stop_on_reboot=0", "default"])
def test_a_kernel_that_hangs_comes_back_only_through_a_watchdog_kept_running(request, tmp_path, keeps_running):
    # The watchdog core stops i6300esb on every reboot, kexec included (the driver asks it to:
    # watchdog_stop_on_reboot), unless the running kernel booted with watchdog.stop_on_reboot=0.
    guest = debian_guest(flavour=SYSTEMD)
    _running, newer = guest.versions
    machine, wheel = start_with_wheel(
        start_logged(log_path(request.node.name)),
        tmp_path,
        flavour=SYSTEMD,
        cmdline=f"{'watchdog.stop_on_reboot=0 ' if keeps_running else ''}i6300esb.heartbeat={HEARTBEAT_SECONDS} "
        f"vmtest.nonce={secrets.token_hex(8)}",
        qemu_options=WATCHDOG,
    )
    try:
        first = machine.run("cat /proc/cmdline")
        pip_install(machine, f"/mnt/{wheel}")
        machine.run("modprobe i6300esb && test -c /dev/watchdog")
        # Petted every 2 s until kexec -e ends the process without the magic close: the timer runs on.
        machine.run("(while :; do printf 1; sleep 2; done) > /dev/watchdog &")
        # The new kernel's init never returns and never pets: it hangs without a panic. No panic= (no way
        # back but the watchdog), and its boot shown (loglevel) to see it start.
        machine.run(
            f"kexec-bin reboot --kernel {newer} --append 'loglevel=6 init=/usr/bin/sleep -- infinity' "
            "--no-way-back --load-only",
            COMMAND_SECONDS,
        )
        machine.send("kexec -e")
        machine.expect(re.escape(f"Linux version {newer}"), BOOT_SECONDS)
        started = time.monotonic()
        if keeps_running:
            cmdline, ready = back_at_console(machine)
            assert cmdline == first
            assert "Kernel panic" not in machine.tail(400)
            print(
                f"\nway back: a hung kernel was reset by i6300esb, back at the console {ready - started:.1f} s "
                "after it started"
            )
        else:
            with pytest.raises(GuestError, match="did not appear"):
                machine.expect("VMTEST-CMDLINE", WATCHDOG_SECONDS)
    finally:
        machine.close()
