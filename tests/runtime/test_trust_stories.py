"""The story commands under lockdown: they load with kexec_file_load, refuse a kernel the host will not
accept before loading (netboot: before downloading the initrd), and `reboot` takes the signed flavour."""

from __future__ import annotations

import os

import pytest

from kexec_bin.cli import main
from kexec_bin.shim import kernel_of
from kexec_build.vm import secure_boot
from tests.runtime.test_netboot import INITRD, KERNEL, mirror, netboot, real_files  # noqa: F401 (fixtures)

from .kernel_trees import install_kernel, package_tree
from .test_trust import DEBIAN_CA, MICROSOFT_UEFI_CA, locked_down


def reboot(tree, *args):
    return main(["reboot", "--root", str(tree.root), *args])


def test_reboot_under_lockdown_loads_a_trusted_kernel_with_kexec_file_load(tree, recording_kexec, capsys):
    # --root goes with --dry-run only: the plan's kexec command is what a load would run.
    release = install_kernel(tree.root, package_tree("bookworm"))
    locked_down(tree, DEBIAN_CA)
    assert reboot(tree, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "syscall: kexec_file_load (signed by a chain to Debian Secure Boot CA" in out
    (command,) = [line for line in out.splitlines() if line.lstrip().startswith("kexec command:")]
    assert "--kexec-file-syscall" in command.split()
    assert command.endswith(f"-- {tree.root}/boot/vmlinuz-{release}")


def test_reboot_refuses_an_unsigned_kernel_before_loading_it(tree, recording_kexec, capsys, tmp_path):
    release = install_kernel(tree.root, package_tree("bookworm"))
    kernel = tree.root / "boot" / f"vmlinuz-{release}"
    os.replace(secure_boot.unsigned(kernel, tmp_path / "unsigned"), kernel)
    locked_down(tree, DEBIAN_CA)
    assert reboot(tree, "--dry-run") == 1
    err = capsys.readouterr().err
    assert f"will not accept {kernel} (unsigned) for kexec: no signature" in err
    assert "the distribution's signed kernel" in err
    assert not recording_kexec.exists()


def test_reboot_takes_the_signed_flavour_of_the_same_release_and_says_so(tree, recording_kexec, capsys, tmp_path):
    release = install_kernel(tree.root, package_tree("bookworm"))
    kernel = tree.root / "boot" / f"vmlinuz-{release}"
    os.link(kernel, f"{kernel}.efi.signed")
    os.replace(secure_boot.unsigned(kernel, tmp_path / "unsigned"), kernel)
    locked_down(tree, DEBIAN_CA)
    assert reboot(tree, "--dry-run") == 0
    out = capsys.readouterr().out
    assert ".efi.signed, the signed flavour of the same release" in out
    (command,) = [line for line in out.splitlines() if line.lstrip().startswith("kexec command:")]
    assert command.endswith(f"-- {kernel}.efi.signed")


def test_netboot_refuses_an_installer_this_host_does_not_trust_before_downloading_the_initrd(
    netboot,  # noqa: F811 (the fixture imported above)
    mirror,  # noqa: F811
    httpserver,
):
    locked_down(netboot.tree, MICROSOFT_UEFI_CA)  # a host that trusts Microsoft's CA, not Debian's
    status, _, err, calls = netboot("--mirror", mirror(), "--release", "bookworm", "--network", "dhcp", "--dry-run")
    assert status == 1 and calls == []
    assert "signed by Debian Secure Boot Signer 2022 - linux (issuer Debian Secure Boot CA)" in err
    requested = [request.path for request, _ in httpserver.log]
    assert f"/debian/{KERNEL}" in requested and f"/debian/{INITRD}" not in requested


@pytest.mark.parametrize(
    ("args", "kernel"),
    [
        (["-l", "/boot/vmlinuz", "--initrd", "/boot/initrd.img"], "/boot/vmlinuz"),
        (["--initrd", "/boot/initrd.img", "-s", "-l", "vmlinuz"], "vmlinuz"),  # an option's value is no kernel
        (["-sl", "--command-line=quiet", "--", "-vmlinuz"], "-vmlinuz"),
        (["-e"], None),
        (["--version"], None),
    ],
)
def test_the_kexec_preflight_finds_the_kernel_file_it_judges(args, kernel):
    assert kernel_of(args) == kernel
