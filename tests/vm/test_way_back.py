"""The way back, for real: a systemd Debian guest kexecs into kernels that fail, and the firmware brings it home.

Unlike the other story tests, these guests may reset: QEMU's reset runs the firmware again, and
the firmware boots what it booted first (QEMU's -kernel, the guest's default). A guest that is back
at its console loop with the first kernel's release and command line came back through the firmware.
"""

from __future__ import annotations

import secrets
import time

import pytest

from kexec_build.vm import guests
from kexec_build.vm.binaries import wheel_for
from kexec_build.vm.debian_guest import (
    SYSTEMD,
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


def test_a_kernel_that_cannot_mount_root_panics_back_into_the_original_system(request, tmp_path):
    guest = debian_guest(flavour=SYSTEMD)
    running, newer = guest.versions
    nonce = secrets.token_hex(8)
    machine, wheel = start_with_wheel(
        start_logged(log_path(request.node.name)), tmp_path, flavour=SYSTEMD, cmdline=f"vmtest.nonce={nonce}"
    )
    try:
        first = machine.run("cat /proc/cmdline")
        pip_install(machine, f"/mnt/{wheel}")

        # The newer kernel with the running kernel's initrd: its modules are for another release, so the
        # initrd never finds the root disk and initramfs-tools panics (it honours panic= with reboot -f).
        answer = machine.run(
            f"kexec-bin reboot --kernel /boot/vmlinuz-{newer} --initrd /boot/initrd.img-{running} "
            f"--append rootdelay=2 --panic {PANIC_SECONDS} --yes --exec-after 1",
            COMMAND_SECONDS,
        )
        assert f"way back: panic={PANIC_SECONDS}: a panic in the next kernel resets" in answer
        machine.expect("Rebooting automatically due to panic= boot argument", BOOT_SECONDS)
        panicked = time.monotonic()
        cmdline, ready = back_at_console(machine)
        initrd_seconds = ready - panicked
        assert cmdline == first and "panic=" not in cmdline
        assert machine.run("uname -r") == running

        # No initrd at all: the kernel itself panics (VFS: unable to mount root) and resets after panic=.
        machine.run(
            f"kexec-bin reboot --kernel /boot/vmlinuz-{newer} --initrd none --panic {PANIC_SECONDS} "
            "--yes --exec-after 1",
            COMMAND_SECONDS,
        )
        machine.expect("Kernel panic - not syncing", BOOT_SECONDS)
        panicked = time.monotonic()
        cmdline, ready = back_at_console(machine)
        kernel_seconds = ready - panicked
        assert cmdline == first
        assert machine.run("uname -r") == running

        # The same VM's plain firmware reboot, for comparison.
        machine.send("reboot -f")
        started = time.monotonic()
        cmdline, ready = back_at_console(machine)
        assert cmdline == first
        print(
            f"\nway back: initramfs panic -> original console {initrd_seconds:.1f} s, kernel panic -> "
            f"{kernel_seconds:.1f} s (panic={PANIC_SECONDS}), plain firmware reboot {ready - started:.1f} s"
        )
    finally:
        machine.close()


def start_through_grub(request, folder, *, next_entry: str) -> tuple[Machine, str]:
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
        qemu_options=qemu_drives(guest, *disks),
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

        # The default kernel with an initrd that cannot mount root: it panics, the firmware starts GRUB,
        # and GRUB boots the one-shot entry, the kernel that ran the command.
        answer = machine.run(
            f"kexec-bin reboot --initrd /boot/initrd.img-{running} --append rootdelay=2 --panic {PANIC_SECONDS} "
            "--yes --exec-after 1",
            COMMAND_SECONDS,
        )
        assert f"plan: reboot into {newer}" in answer and one_shot in answer
        machine.expect("Rebooting automatically due to panic= boot argument", BOOT_SECONDS)
        machine.expect(f"GRUB: booting {running}", BOOT_SECONDS)
        cmdline, _ = back_at_console(machine)
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
        machine.expect(f"GRUB: booting {newer}", BOOT_SECONDS)
        back_at_console(machine)
        assert machine.run("uname -r") == newer
    finally:
        machine.close()
