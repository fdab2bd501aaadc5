"""`kexec-bin reboot` over root trees holding real Debian kernels: its plan, its loads and every refusal."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from kexec_bin.cli import main

from .kernel_trees import install_kernel, package_tree


@pytest.fixture
def machine(tree):
    """The doctor's healthy tree with bookworm's kernel running and bookworm-backports' installed next to it."""
    old = install_kernel(tree.root, package_tree("bookworm"))
    new = install_kernel(tree.root, package_tree("bookworm-backports"))
    return tree, old, new


def reboot(tree, *args):
    return main(["reboot", "--root", str(tree.root), *args])


@pytest.mark.usefixtures("recording_kexec")
def test_dry_run_prints_the_plan_and_loads_nothing(machine, capsys, recording_kexec):
    tree, old, new = machine
    assert reboot(tree) == 0
    out = capsys.readouterr().out
    root = tree.root
    assert f"plan: reboot into {new}" in out
    assert f"kernel  {root}/boot/vmlinuz-{new}" in out
    assert f"checked: x86 bzImage (boot protocol 2.15); modules in /lib/modules/{new}" in out
    assert f"initrd  {root}/boot/initrd.img-{new}" in out
    assert "checked: gzip-compressed (the kernel's own)" in out
    # BOOT_IMAGE names the previous kernel; crashkernel= keeps kdump working in the next one.
    assert "command line: root=UUID=2f6b7bb5-6a0d-4d7c-9a59-6d1c8c6f2b0e ro quiet crashkernel=256M panic=30\n" in out
    assert f"without BOOT_IMAGE=/boot/vmlinuz-{old}" in out
    assert "dry run: nothing loaded" in out
    assert not recording_kexec.exists()


def kexec_command(out: str) -> list[str]:
    """The words of the plan's `kexec command:` line, after the program."""
    (line,) = [line for line in out.splitlines() if line.startswith("  kexec command: ")]
    return shlex.split(line.removeprefix("  kexec command: "))[1:]


def test_the_plan_shows_the_load_it_makes(machine, recording_kexec, capsys):
    tree, _old, new = machine
    assert reboot(tree, "--append", "vmtest.marker=1") == 0
    assert kexec_command(capsys.readouterr().out) == [
        "--load",
        "--kexec-syscall-auto",
        f"--initrd={tree.root}/boot/initrd.img-{new}",
        "--command-line=root=UUID=2f6b7bb5-6a0d-4d7c-9a59-6d1c8c6f2b0e ro quiet crashkernel=256M vmtest.marker=1"
        " panic=30",
        "--",  # the kernel last, after the end of the options
        f"{tree.root}/boot/vmlinuz-{new}",
    ]
    assert not recording_kexec.exists()


def test_named_release_no_initrd_and_a_command_line(machine, recording_kexec, capsys):
    tree, old, _new = machine
    assert reboot(tree, "--kernel", old, "--initrd", "none", "--command-line", "console=ttyS0") == 0
    assert kexec_command(capsys.readouterr().out) == [
        "--load",
        "--kexec-syscall-auto",
        "--command-line=console=ttyS0 panic=30",
        "--",
        f"{tree.root}/boot/vmlinuz-{old}",
    ]


@pytest.mark.parametrize("mode", ["--load-only", "--yes"])
def test_a_tree_is_only_inspected_never_loaded_into_this_host(machine, recording_kexec, capsys, mode):
    # The tree's evidence says nothing about this host's kernel, which the load would reach (and --yes
    # would remount this host's file systems read-only): --root plans are dry runs.
    tree, _old, _new = machine
    assert reboot(tree, mode) == 64
    err = capsys.readouterr().err
    assert f"kexec-bin: --root {tree.root} with {mode}: a tree is only inspected" in err
    assert not recording_kexec.exists()


@pytest.mark.usefixtures("recording_kexec")
def test_refuses_when_no_kernel_is_found(tree, capsys):
    (tree.root / "boot").mkdir()
    assert reboot(tree) == 1
    assert capsys.readouterr().err.startswith("kexec-bin: no kernel found")


def test_refuses_a_kernel_without_its_initrd(machine, capsys, recording_kexec):
    tree, _old, new = machine
    (tree.root / "boot" / f"initrd.img-{new}").unlink()
    assert reboot(tree) == 1
    err = capsys.readouterr().err
    assert f"no initrd for /boot/vmlinuz-{new}" in err and f"update-initramfs -c -k {new}" in err
    assert not recording_kexec.exists()


def test_refuses_a_file_that_is_not_a_kernel(machine, capsys, recording_kexec):
    tree, _old, new = machine
    assert reboot(tree, "--kernel", f"/boot/config-{new}") == 1
    assert f"/boot/config-{new} is not a kernel image" in capsys.readouterr().err
    assert not recording_kexec.exists()


def test_refuses_a_kernel_whose_modules_are_missing(machine, capsys, recording_kexec):
    tree, old, _new = machine
    shutil.rmtree(tree.root / "lib/modules" / old)
    assert reboot(tree, "--kernel", f"/boot/vmlinuz-{old}") == 1
    err = capsys.readouterr().err
    assert f"its modules are missing (/lib/modules/{old} does not exist)" in err
    assert not recording_kexec.exists()


def test_refuses_an_unknown_release(machine, capsys):
    tree, old, new = machine
    assert reboot(tree, "--kernel", "5.10.0-99-amd64") == 1
    assert f"(in /boot: {new}, {old})" in capsys.readouterr().err


def test_refuses_an_initrd_that_is_not_one(machine, capsys, recording_kexec):
    tree, _old, new = machine
    assert reboot(tree, "--initrd", f"/boot/config-{new}") == 1
    assert "is neither a cpio archive nor compressed" in capsys.readouterr().err
    assert not recording_kexec.exists()


@pytest.mark.parametrize(
    ("blocked", "reason"),
    [
        (lambda tree: tree.set_capability(False), "run as root"),
        (lambda tree: tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n"), "kexec_load_disabled"),
    ],
    ids=["no-CAP_SYS_BOOT", "kexec_load_disabled"],
)
def test_the_preflight_blocks_before_kexec_runs(machine, capsys, recording_kexec, blocked, reason):
    tree, _old, _new = machine
    blocked(tree)
    assert reboot(tree) != 0
    assert reason in capsys.readouterr().err
    assert not recording_kexec.exists()


def test_the_docs_show_the_playbook_the_fleet_test_runs():
    project = Path(__file__).resolve().parents[2]
    playbook = (project / "examples" / "kexec-reboot.yml").read_text()
    assert f"```yaml\n{playbook}```" in (project / "docs" / "at-scale.md").read_text()
