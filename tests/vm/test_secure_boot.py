"""kexec under Secure Boot: a Debian guest booted by OVMF with Secure Boot through shim, GRUB and its signed
kernel, locked down; kexec-bin predicts which kernels it will accept, and the kernel's own verdict agrees.

Two guests, each booted once and shared by the tests that follow it (file order; the last test of
each boots another kernel and ends that guest):

- OVMF with Microsoft's keys (db: Microsoft's two CAs; shim adds Debian's CA through MokListRT), a
  systemd guest with two kernels: the prediction against `kexec -s` for Debian's signed kernel, the
  same unsigned, re-signed with a key made here and re-signed with OVMF's snakeoil key; then
  `kexec-bin reboot --yes` into the newer signed kernel (bookworm-backports'), through systemd, which
  comes back locked down too.
- OVMF with its snakeoil keys (db: the snakeoil certificate; shim re-signed with that key so the
  firmware runs it): the same comparison, where the snakeoil-signed kernel is now trusted through
  the platform keyring; then `kexec-bin netboot debian --yes` into the Debian installer.
"""

from __future__ import annotations

import pytest

from kexec_build import recipes
from kexec_build.testbed import netboot_mirror
from kexec_build.vm import guests, initramfs, python_guest, secure_boot
from kexec_build.vm.binaries import kexec_from_wheel, wheel_for
from kexec_build.vm.debian_guest import (
    SYSTEMD,
    USER_NET_HOST,
    USER_NIC,
    DebianGuest,
    debian_guest,
    disk_with,
    pip_install,
    set_static_address,
)
from kexec_build.vm.guests import INSTALLER_MAIN_MENU, INSTALLER_SECONDS

pytestmark = pytest.mark.vm

KERNELS = ("signed", "unsigned", "test-signed", "snakeoil-signed")
# What each firmware's guest accepts: Debian's kernel always (shim's Debian CA, and the builtin
# keyring); the snakeoil-signed one only where the firmware's db holds the snakeoil certificate.
EXPECTED = {
    "ms": {"signed": "accepted", "unsigned": "refused", "test-signed": "refused", "snakeoil-signed": "refused"},
    "snakeoil": {"signed": "accepted", "unsigned": "refused", "test-signed": "refused", "snakeoil-signed": "accepted"},
}
NETBOOT_SECONDS = 600


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    """The second disk (/mnt in the guest): the wheel and the kernels to judge."""
    folder = tmp_path_factory.mktemp("secure-boot")
    kernel = debian_guest().kernel
    key, cert = secure_boot.make_key(folder, "kexec-bin test key")
    files = [
        wheel_for("x86_64"),
        secure_boot.unsigned(kernel, folder / "vmlinuz-unsigned"),
        secure_boot.signed(kernel, key, cert, folder / "vmlinuz-test-signed"),
        secure_boot.signed(
            kernel,
            secure_boot.SNAKEOIL_KEY,
            secure_boot.SNAKEOIL_CERT,
            folder / "vmlinuz-snakeoil-signed",
            passphrase=secure_boot.SNAKEOIL_PASSPHRASE,
        ),
    ]
    return folder, disk_with(files, folder / "data.ext4")


def _boot(disk, variables: str, guest: DebianGuest, **options):
    folder, image = disk
    log = guests.log_path(f"secure-boot-{variables}")
    machine = secure_boot.start_debian(guest, variables, folder, log, disks=[image], **options)
    _mount_security_files(machine)
    pip_install(machine, f"/mnt/{wheel_for('x86_64').name}")
    return machine


@pytest.fixture(scope="module")
def microsoft_guest(disk):
    machine = _boot(disk, "ms", debian_guest(flavour=SYSTEMD))
    yield machine
    machine.close()


@pytest.fixture(scope="module")
def snakeoil_guest(disk):
    folder = disk[0]
    loader = secure_boot.signed(
        secure_boot.shim(),
        secure_boot.SNAKEOIL_KEY,
        secure_boot.SNAKEOIL_CERT,
        folder / "shimx64-snakeoil.efi",
        passphrase=secure_boot.SNAKEOIL_PASSPHRASE,
    )
    machine = _boot(disk, "snakeoil", debian_guest(), loader=loader, qemu_options=USER_NIC)
    yield machine
    machine.close()


def _mount_security_files(machine) -> None:
    """securityfs (lockdown) and efivarfs (SecureBoot), where systemd has not mounted them already."""
    machine.run("mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security")
    machine.run(
        "mountpoint -q /sys/firmware/efi/efivars || "
        "{ modprobe efivarfs && mount -t efivarfs efivarfs /sys/firmware/efi/efivars; }"
    )


def _kernel_path(machine, kernel: str) -> str:
    return f"/boot/vmlinuz-{machine.run('uname -r')}" if kernel == "signed" else f"/mnt/vmlinuz-{kernel}"


def _verdicts(machine) -> dict:
    """For each kernel: (kexec-bin's prediction, the kernel's own verdict on `kexec -s --load`, kexec's words)."""
    found = {}
    for kernel in KERNELS:
        path = _kernel_path(machine, kernel)
        predicted = machine.run(
            f"kexec-bin doctor --kernel {path} --json | "
            "python3 -c 'import json, sys; print(json.load(sys.stdin)[\"verdict\"])'"
        )
        # KEXEC_BIN_NO_CHECK: past kexec-bin's own checks, straight to the kernel.
        said = machine.run(
            f"KEXEC_BIN_NO_CHECK=1 kexec -s --load {path} --command-line=console=ttyS0 "
            "&& kexec --unload && echo KERNEL-ACCEPTED || echo KERNEL-REFUSED"
        )
        found[kernel] = (predicted, "accepted" if said.endswith("KERNEL-ACCEPTED") else "refused", said)
    return found


def _assert_secure_boot_and_lockdown(machine) -> None:
    assert "[integrity]" in machine.run("cat /sys/kernel/security/lockdown")
    assert machine.run("od -An -tx1 /sys/firmware/efi/efivars/SecureBoot-*").split()[-1] == "01"
    _assert_kexec_load_refused(machine, f"KEXEC_BIN_NO_CHECK=1 kexec /boot/vmlinuz-{machine.run('uname -r')}")


def _assert_kexec_load_refused(machine, kexec: str) -> None:
    """`kexec` (a command and its kernel) asked to use kexec_load is refused by the kernel."""
    refused = machine.run(f"{kexec} -c --load --command-line=console=ttyS0 || echo KEXEC-LOAD-REFUSED")
    # IMA's Secure Boot policy refuses it first (EACCES), before lockdown would (EPERM).
    assert refused.endswith("KEXEC-LOAD-REFUSED") and "kexec_load failed: Permission denied" in refused
    assert "ima: impossible to appraise a kernel image without a file descriptor" in refused


def test_microsoft_keys_secure_boot_is_on_and_kexec_load_is_refused(microsoft_guest):
    assert "secureboot: Secure boot enabled" in microsoft_guest.run("dmesg | grep -i secure")
    _assert_secure_boot_and_lockdown(microsoft_guest)
    keys = microsoft_guest.run("grep asymmetri /proc/keys")
    assert "Microsoft Corporation UEFI CA 2011" in keys and "Debian Secure Boot CA" in keys


def test_microsoft_keys_the_prediction_is_the_kernels_own_verdict(microsoft_guest):
    verdicts = _verdicts(microsoft_guest)
    assert {kernel: (predicted, actual) for kernel, (predicted, actual, _) in verdicts.items()} == {
        kernel: (verdict, verdict) for kernel, verdict in EXPECTED["ms"].items()
    }, verdicts
    assert "No data available" in verdicts["unsigned"][2]  # ENODATA: no signature at all
    assert "Required key not available" in verdicts["test-signed"][2]  # ENOKEY: no trusted key signed it
    # `kexec` with its own check refuses it first, naming the signer and what it would need.
    said = microsoft_guest.run("kexec -s --load /mnt/vmlinuz-test-signed --command-line=x; echo status=$?")
    assert "kexec: this kernel will not accept /mnt/vmlinuz-test-signed (signed by kexec-bin test key" in said
    assert "mokutil --import" in said and said.endswith("status=1")


def test_reboot_yes_comes_back_on_the_newer_signed_kernel(microsoft_guest):
    # Last on this guest: it boots the newer kernel, as the boot loader would next.
    running, newer = debian_guest(flavour=SYSTEMD).versions
    assert microsoft_guest.run("uname -r") == running
    plan = microsoft_guest.run("kexec-bin reboot --yes --exec-after 1", guests.COMMAND_SECONDS)
    assert f"kernel  /boot/vmlinuz-{newer}" in plan and "--kexec-file-syscall" in plan
    assert "syscall: kexec_file_load (signed by a chain to Debian Secure Boot CA" in plan
    microsoft_guest.expect(r"VMTEST-CMDLINE: .*\n", secure_boot.BOOT_SECONDS)  # systemd stops, the kernel boots
    microsoft_guest.expect("VMTEST-READY", guests.COMMAND_SECONDS)
    assert microsoft_guest.run("uname -r") == newer
    _mount_security_files(microsoft_guest)
    _assert_secure_boot_and_lockdown(microsoft_guest)


def test_snakeoil_keys_the_snakeoil_key_is_in_db_and_the_platform_keyring(snakeoil_guest):
    _assert_secure_boot_and_lockdown(snakeoil_guest)
    keys = snakeoil_guest.run("grep asymmetri /proc/keys")
    assert "SnakeOil: " in keys and "Microsoft" not in keys


def test_snakeoil_keys_the_prediction_is_the_kernels_own_verdict(snakeoil_guest):
    verdicts = _verdicts(snakeoil_guest)
    assert {kernel: (predicted, actual) for kernel, (predicted, actual, _) in verdicts.items()} == {
        kernel: (verdict, verdict) for kernel, verdict in EXPECTED["snakeoil"].items()
    }, verdicts


def test_netboot_reaches_the_installers_main_menu_under_secure_boot(snakeoil_guest, httpserver):
    # Last on this guest: it boots the installer, whose kernel is signed by Debian.
    for path, data in netboot_mirror.files("bookworm", "amd64").items():
        httpserver.expect_request(f"/debian/{path}").respond_with_data(data, content_type="application/octet-stream")
    set_static_address(snakeoil_guest, "10.0.2.15")
    snakeoil_guest.send(
        f"kexec-bin netboot debian --mirror http://{USER_NET_HOST}:{httpserver.port}/debian --release bookworm "
        "--append priority=low --yes --exec-after 1"
    )
    plan = snakeoil_guest.expect(r"(?s)plan: Debian 12\.\d+ .*?booting: [^\n]*\n", NETBOOT_SECONDS).group()
    assert "syscall: kexec_file_load (signed by a chain to Debian Secure Boot CA" in plan
    snakeoil_guest.expect(INSTALLER_MAIN_MENU, INSTALLER_SECONDS)


def test_aarch64_debians_signed_kernel_under_secure_boot_cannot_kexec_and_the_prediction_says_so(tmp_path):
    """AAVMF with Microsoft's keys, shimaa64, grubaa64 and Debian's signed arm64 kernel on the harness's
    initramfs with Python and the aarch64 wheel. Debian's arm64 kernels (bookworm's and bookworm-backports')
    are built without kexec_file_load, and lockdown refuses kexec_load: no kernel can be kexec'd there,
    so (a) and (b) cannot run on arm64; what is proven is that kexec-bin predicts exactly that."""
    board = guests.BOARDS["aarch64"]
    kernel = board.kernel()
    release = kernel.name.removeprefix("vmlinuz-")
    files = {
        **python_guest.files(recipes.load().target("aarch64"), [wheel_for("aarch64")]),
        "boot/vmlinuz": kernel,
        f"boot/config-{release}": kernel.with_name(f"config-{release}"),
    }
    initrd = initramfs.build(
        initramfs.guest_files(board.busybox(), kexec_from_wheel("aarch64"), files), tmp_path / "initrd.cpio.gz"
    )
    machine = secure_boot.start(
        "aarch64", "ms", tmp_path, guests.log_path("secure-boot-aarch64"), kernel=kernel, initrd=initrd, cmdline=""
    )
    try:
        machine.run(python_guest.PATH)
        # /dev/urandom for Python's start, which cannot wait for the crng this early under TCG.
        machine.run("mount -t devtmpfs devtmpfs /dev")
        assert "secureboot: Secure boot enabled" in machine.run("dmesg | grep -i secure")
        machine.run("mount -t securityfs securityfs /sys/kernel/security")
        assert "[integrity]" in machine.run("cat /sys/kernel/security/lockdown")
        assert "syscall kexec_file_load not available" in machine.run(
            "KEXEC_BIN_NO_CHECK=1 kexec -s --load /boot/vmlinuz --command-line=x || true"
        )
        _assert_kexec_load_refused(machine, "KEXEC_BIN_NO_CHECK=1 kexec /boot/vmlinuz")
        report = machine.run("kexec-bin doctor --kernel /boot/vmlinuz; echo status=$?")
        assert "signed by: Debian Secure Boot Signer 2022 - linux, issuer Debian Secure Boot CA" in report
        assert "verdict: refused:" in report and "without the kexec_file_load system call" in report
        assert report.endswith("status=1")
    finally:
        machine.close()
