"""The way back, over root trees with real Debian kernels: panic= on every plan, GRUB's one-shot entry for reboot."""

from __future__ import annotations

import subprocess

import pytest

from kexec_bin import bootloader, wayback
from kexec_bin.cli import main

from .kernel_trees import install_kernel, package_tree, write_grub

UUID = "2f6b7bb5-6a0d-4d7c-9a59-6d1c8c6f2b0e"


@pytest.fixture
def machine(tree):
    """bookworm's kernel running; bookworm-backports' installed beside it, GRUB's default (as after an upgrade)."""
    old = install_kernel(tree.root, package_tree("bookworm"))
    new = install_kernel(tree.root, package_tree("bookworm-backports"))
    tree.write("/proc/sys/kernel/osrelease", old + "\n")
    return tree, old, new


def reboot(tree, *args):
    return main(["reboot", "--root", str(tree.root), *args])


def loaded_command_line(record) -> str:
    (line,) = [word for word in record.read_text().splitlines() if word.startswith("--command-line=")]
    return line.removeprefix("--command-line=")


def test_every_plan_arms_panic_and_names_it(machine, capsys, recording_kexec):
    tree, _old, _new = machine
    assert reboot(tree, "--load-only") == 0
    assert loaded_command_line(recording_kexec).split()[-1] == "panic=30"
    assert "way back: panic=30: a panic in the next kernel resets through the firmware after 30 s" in (
        capsys.readouterr().out
    )
    assert reboot(tree, "--load-only", "--panic", "7") == 0
    assert loaded_command_line(recording_kexec).split()[-1] == "panic=7"


def test_the_users_own_panic_is_kept_and_never_doubled(machine, capsys, recording_kexec):
    tree, _old, _new = machine
    assert reboot(tree, "--load-only", "--append", "panic=-1", "--panic", "5") == 0
    words = loaded_command_line(recording_kexec).split()
    assert [word for word in words if word.startswith("panic=")] == ["panic=-1"]
    assert "way back: panic=-1: the command line's own (kept; none added)" in capsys.readouterr().out


def test_no_way_back_adds_nothing_and_says_so(machine, capsys, recording_kexec):
    tree, _old, _new = machine
    assert reboot(tree, "--load-only", "--no-way-back") == 0
    assert "panic=" not in loaded_command_line(recording_kexec)
    assert "way back: none (--no-way-back)" in capsys.readouterr().out
    assert not (tree.root / "etc/systemd/system" / wayback.CONFIRM_UNIT).exists()


@pytest.mark.parametrize("seconds", ["0", "ten", "-3"])
def test_a_bad_panic_value_is_a_usage_error(machine, capsys, seconds):
    tree, _old, _new = machine
    assert reboot(tree, f"--panic={seconds}") == 64
    assert "--panic" in capsys.readouterr().err


def test_reboot_sets_grubs_one_shot_entry_for_the_running_kernel(machine, capsys, recording_kexec):
    tree, old, new = machine
    write_grub(tree.root, new, old, grubenv={"saved_entry": "0"})
    grubenv = tree.root / "boot/grub/grubenv"
    assert bootloader.next_kernel(str(tree.root)).candidate.release == new

    # A dry run names the way back and writes nothing.
    assert reboot(tree) == 0
    entry = f"gnulinux-advanced-{UUID}>gnulinux-{old}-advanced-{UUID}"
    assert f"way back: one-shot GRUB entry {entry!r} (the running kernel {old})" in capsys.readouterr().out
    assert "next_entry" not in grubenv.read_text()

    assert reboot(tree, "--load-only") == 0
    # The block is still grub-editenv's: GRUB's own tool reads both variables from it.
    assert len(grubenv.read_bytes()) == wayback.GRUBENV_SIZE
    listed = subprocess.run(["grub-editenv", str(grubenv), "list"], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == ["saved_entry=0", f"next_entry={entry}"]
    # The firmware's next boot now goes to the running kernel, read the way GRUB reads it.
    assert bootloader.next_kernel(str(tree.root)).candidate.release == old

    # The new system's confirm step: the unit, enabled for one boot, clears the entry and removes itself.
    unit = tree.root / "etc/systemd/system" / wayback.CONFIRM_UNIT
    wants = tree.root / "etc/systemd/system/multi-user.target.wants" / wayback.CONFIRM_UNIT
    assert wants.is_symlink() and str(wants.readlink()) == f"/etc/systemd/system/{wayback.CONFIRM_UNIT}"
    text = unit.read_text()
    assert "ExecStart=grub-editenv /boot/grub/grubenv unset next_entry\n" in text
    subprocess.run(["grub-editenv", str(grubenv), "unset", "next_entry"], check=True)
    assert bootloader.next_kernel(str(tree.root)).candidate.release == new


def test_no_one_shot_when_the_default_is_the_running_kernel(machine, capsys, recording_kexec):
    tree, old, new = machine
    write_grub(tree.root, new, old, default=f"gnulinux-advanced-{UUID}>gnulinux-{old}-advanced-{UUID}")
    assert reboot(tree, "--load-only", "--kernel", new) == 0
    assert f"way back: the firmware's next boot: the running kernel {old}" in capsys.readouterr().out
    assert "next_entry" not in (tree.root / "boot/grub/grubenv").read_text()


def test_grubenv_block_round_trips_through_grub_editenv(tmp_path):
    path = tmp_path / "grubenv"
    path.write_bytes(wayback.grubenv_bytes({}))
    subprocess.run(["grub-editenv", str(path), "set", "a=1", "b=x y"], check=True)
    wayback.set_grubenv(str(path), {"next_entry": "one>two", "a": None})
    listed = subprocess.run(["grub-editenv", str(path), "list"], capture_output=True, text=True, check=True)
    assert listed.stdout.splitlines() == ["b=x y", "next_entry=one>two"]
    reference = tmp_path / "reference"
    subprocess.run(["grub-editenv", str(reference), "create"], check=True)
    subprocess.run(["grub-editenv", str(reference), "set", "b=x y", "next_entry=one>two"], check=True)
    # The same bytes grub-editenv writes, header and padding included.
    assert path.read_bytes() == reference.read_bytes()
