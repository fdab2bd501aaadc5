"""`kexec-bin iso` in a plain Debian guest: pip install the wheel with its [iso] extra, then boot the
Debian installer's kernel out of an ISO image to the installer's main menu on the serial console.
On aarch64, whose Debian system cannot be debootstrapped here, the harness's initramfs guest gets
Debian's arm64 python3 and the aarch64 wheel unpacked instead."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kexec_bin.stories.iso import MEMDISK
from kexec_build import recipes
from kexec_build.testbed import iso_images
from kexec_build.vm import python_guest, screen
from kexec_build.vm.bench import OVMF
from kexec_build.vm.binaries import wheel_for
from kexec_build.vm.debian_guest import debian_guest, make_ext4, pip_install, qemu_drives
from kexec_build.vm.guests import COMMAND_SECONDS, INSTALLER_MAIN_MENU, INSTALLER_SECONDS

pytestmark = pytest.mark.vm

HOST_MEMDISK = Path("/") / MEMDISK


@pytest.mark.skipif(bool(iso_images.missing_tools()), reason=iso_images.missing_tools())
@pytest.mark.parametrize("firmware", ["SeaBIOS", "OVMF"])
def test_kexec_bin_iso_boots_the_installer_out_of_an_image(vm, tmp_path, firmware):
    """Kernel mode works whatever the firmware; on UEFI, --memdisk is refused with the reason."""
    if firmware == "OVMF" and not OVMF.exists():
        pytest.skip(f"{OVMF} missing (Debian's ovmf package; scripts/setup --test installs it)")
    guest = debian_guest()
    disk = tmp_path / "disk"
    disk.mkdir()
    shutil.copy(wheel_for("x86_64"), disk)
    shutil.copy(iso_images.packaged("ipxe"), disk)
    for build in (iso_images.loopback_image, iso_images.isolinux_image):
        built = build(tmp_path)
        built.rename(disk / built.name)
    machine = vm.start(
        "x86_64",
        kernel=guest.kernel,
        initrd=guest.initrd,
        cmdline=guest.cmdline(),
        qemu_options=[
            *qemu_drives(guest, make_ext4(disk, tmp_path / "disk.ext4")),
            *(["-bios", str(OVMF)] if firmware == "OVMF" else []),
        ],
    )
    # Offline, as on a machine without PyPI: the documented `pip install 'kexec-bin[iso]'` still resolves, the
    # extra being empty now that kexec_bin.isofs reads images with the standard library alone.
    pip_install(machine, "--find-links /mnt 'kexec-bin[iso]'")

    isolinux = machine.run("kexec-bin iso /mnt/isolinux.iso --list", COMMAND_SECONDS)
    assert "2. Advanced options > Expert install" in isolinux  # syslinux's order: Expert, Rescue, Automated
    loopback = machine.run("kexec-bin iso /mnt/loopback.iso --list", COMMAND_SECONDS)
    # /mnt is the disk's own root: the path a booted live system would look for on that disk.
    assert "cmdline: priority=low iso-scan/filename=/loopback.iso" in loopback
    memdisk = machine.run("kexec-bin iso /mnt/ipxe.iso --memdisk 2>&1; echo status=$?", COMMAND_SECONDS)
    if firmware == "OVMF":
        assert "kexec-bin: --memdisk: this machine was booted by UEFI (/sys/firmware/efi exists)" in memdisk
        assert "status=1" in memdisk
    else:  # the guest has no syslinux-common: the plan takes the memdisk the x86 wheel carries
        assert "bundled in this wheel (/usr/lib/syslinux/memdisk is missing)" in memdisk
        assert "dry run: nothing loaded" in memdisk

    # --console auto keeps the guest's console=ttyS0, so the installer talks on the serial line.
    machine.send("kexec-bin iso /mnt/loopback.iso --yes --exec-after 0")
    machine.expect(r"booting: no systemd; sync, remount every filesystem read-only, then kexec -e", COMMAND_SECONDS)
    machine.expect(INSTALLER_MAIN_MENU, INSTALLER_SECONDS)


@pytest.mark.skipif(bool(iso_images.missing_tools()), reason=iso_images.missing_tools())
def test_kexec_bin_iso_boots_the_arm64_installer_out_of_an_image(vm, tmp_path):
    """aarch64: an arm64 grub-mkrescue image of Debian's arm64 installer, booted by the aarch64 wheel's kexec-bin."""
    image = iso_images.loopback_image(tmp_path, arch="arm64")
    guest_python = python_guest.files(recipes.load().target("aarch64"), [wheel_for("aarch64")])
    machine = vm.boot("aarch64", files={**guest_python, "images/loopback.iso": image})
    machine.run(python_guest.PATH, COMMAND_SECONDS)

    listing = machine.run("kexec-bin iso /images/loopback.iso --list", COMMAND_SECONDS)
    assert "kernel:  /install.a64/vmlinuz" in listing
    assert "cmdline: priority=low iso-scan/filename=/images/loopback.iso" in listing
    # --console auto keeps the guest's console=ttyAMA0; no systemd in the initramfs: kexec-bin execs itself.
    machine.send("kexec-bin iso /images/loopback.iso --yes --exec-after 0")
    machine.expect(r"booting: no systemd; sync, remount every filesystem read-only, then kexec -e", COMMAND_SECONDS)
    machine.expect(INSTALLER_MAIN_MENU, INSTALLER_SECONDS)


def test_memdisk_boots_debians_ipxe_image_as_a_whole(vm, tmp_path):
    """BIOS guest without syslinux: the memdisk the x86 wheel carries (Debian's syslinux-common) maps ipxe.iso
    as a CD and iPXE starts on the VGA screen."""
    guest = debian_guest()
    disk = tmp_path / "disk"
    disk.mkdir()
    shutil.copy(wheel_for("x86_64"), disk)
    shutil.copy(iso_images.packaged("ipxe"), disk)
    monitor = tmp_path / "monitor.sock"
    machine = vm.start(
        "x86_64",
        kernel=guest.kernel,
        initrd=guest.initrd,
        cmdline=guest.cmdline(),
        qemu_options=[*qemu_drives(guest, make_ext4(disk, tmp_path / "disk.ext4")), *screen.qemu_options(monitor)],
    )
    pip_install(machine, f"/mnt/{wheel_for('x86_64').name}")
    assert "missing" in machine.run(f"test -e {HOST_MEMDISK} || echo missing", COMMAND_SECONDS)

    machine.send("kexec-bin iso /mnt/ipxe.iso --memdisk --yes --exec-after 0")
    machine.expect(r"bundled in this wheel \(/usr/lib/syslinux/memdisk is missing\)", COMMAND_SECONDS)
    machine.expect(
        r"--load --kexec-syscall --real-mode --initrd=/mnt/ipxe.iso '--command-line=iso raw' "
        r"-- \S+/kexec_bin/boot/memdisk",
        COMMAND_SECONDS,
    )
    machine.expect(r"booting: no systemd", COMMAND_SECONDS)
    # memdisk hooks INT 13h and boots the image's El Torito code: isolinux, which starts iPXE.
    shown = screen.wait_for(monitor, tmp_path, "Open Source Network Boot Firmware", INSTALLER_SECONDS)
    assert "Using raw access to high memory" in shown and "Loading boot sector... booting..." in shown, shown
    assert "ISOLINUX" in shown and "Loading ipxe.krn... ok" in shown, shown
