"""The way back, over root trees with real Debian kernels: panic= on every plan, GRUB's one-shot entry for reboot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kexec_bin import bootloader, firmware, grubenv, wayback
from kexec_bin.cli import main, story_parser
from kexec_bin.errors import PlanError
from kexec_bin.plan.model import LOAD_ONLY, BootPlan

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


def planned(tree, *args) -> BootPlan:
    """`kexec-bin reboot --root TREE ARGS`'s plan, its way back included, as `reboot` makes it.

    --root goes with --dry-run only (a tree is inspected, the kernel that would load is this
    host's), so what a load would write under the tree is tested through `armed`, the step the
    load runs once kexec took the kernel.
    """
    parser, command = story_parser("reboot")
    options = parser.parse_args(["--root", str(tree.root), *args])
    return wayback.plan_way_back(command.make_plan(options), options, options.root)


def armed(tree, *args, out=None) -> BootPlan:
    """`planned`, then its way back armed in the tree: what `--load-only` does after the load."""
    plan = planned(tree, *args)
    wayback.arm(plan.way_back, str(tree.root), out)
    return plan


def test_every_plan_arms_panic_and_names_it(machine, capsys, recording_kexec):
    tree, _old, _new = machine
    assert reboot(tree) == 0
    out = capsys.readouterr().out
    assert "way back: panic=30: a panic in the next kernel resets through the firmware after 30 s" in out
    (command,) = [line for line in out.splitlines() if line.lstrip().startswith("command line:")]
    assert command.split()[-1] == "panic=30"
    assert planned(tree, "--panic", "7").cmdline.split()[-1] == "panic=7"


def test_the_users_own_panic_is_kept_and_never_doubled(machine):
    tree, _old, _new = machine
    plan = planned(tree, "--append", "panic=-1", "--panic", "5")
    assert [word for word in plan.cmdline.split() if word.startswith("panic=")] == ["panic=-1"]
    assert "way back: panic=-1: the command line's own (kept; none added)" in plan.to_text()


def test_no_way_back_adds_nothing_and_says_so(machine):
    tree, _old, _new = machine
    plan = armed(tree, "--no-way-back")
    assert "panic=" not in plan.cmdline
    assert "way back: none (--no-way-back)" in plan.to_text()
    assert not (tree.root / "etc/systemd/system" / grubenv.CONFIRM_UNIT).exists()


@pytest.mark.parametrize("seconds", ["0", "ten", "-3"])
def test_a_bad_panic_value_is_a_usage_error(machine, capsys, seconds):
    tree, _old, _new = machine
    assert reboot(tree, f"--panic={seconds}") == 64
    assert "--panic" in capsys.readouterr().err


def test_reboot_sets_grubs_one_shot_entry_for_the_running_kernel(machine, capsys, recording_kexec):
    tree, old, new = machine
    write_grub(tree.root, new, old, grubenv={"saved_entry": "0"})
    env_block = tree.root / "boot/grub/grubenv"
    assert bootloader.next_kernel(str(tree.root)).candidate.release == new

    # A dry run names the way back and writes nothing.
    assert reboot(tree) == 0
    entry = f"gnulinux-advanced-{UUID}>gnulinux-{old}-advanced-{UUID}"
    assert f"way back: one-shot GRUB entry {entry!r} (the running kernel {old})" in capsys.readouterr().out
    assert "next_entry" not in env_block.read_text()

    armed(tree)
    # The block is still grub-editenv's: GRUB's own tool reads both variables from it.
    assert len(env_block.read_bytes()) == grubenv.GRUBENV_SIZE
    listed = subprocess.run(["grub-editenv", str(env_block), "list"], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == ["saved_entry=0", f"next_entry={entry}"]
    # The firmware's next boot now goes to the running kernel, read the way GRUB reads it.
    assert bootloader.next_kernel(str(tree.root)).candidate.release == old

    # The new system's confirm step: the unit, enabled for one boot, clears the entry and removes itself.
    unit = tree.root / "etc/systemd/system" / grubenv.CONFIRM_UNIT
    wants = tree.root / "etc/systemd/system/multi-user.target.wants" / grubenv.CONFIRM_UNIT
    assert wants.is_symlink() and str(wants.readlink()) == f"/etc/systemd/system/{grubenv.CONFIRM_UNIT}"
    text = unit.read_text()
    # Only the kernel it confirms runs it: the old kernel, back after a failure, leaves it for later.
    assert f"ConditionKernelVersion={new}\n" in text
    assert f"ExecStart={sys.executable} -m kexec_bin.grubenv --confirm /boot/grub/grubenv {entry}\n" in text
    # Run as the unit would, on this tree's grubenv.
    source = str(Path(wayback.__file__).parents[1])  # the tests import kexec_bin from src/
    command = [sys.executable, "-m", "kexec_bin.grubenv", "--confirm", str(env_block), entry]
    subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": source})
    listed = subprocess.run(["grub-editenv", str(env_block), "list"], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == ["saved_entry=0"]
    assert bootloader.next_kernel(str(tree.root)).candidate.release == new


def test_no_one_shot_when_the_default_is_the_running_kernel(machine):
    tree, old, new = machine
    write_grub(tree.root, new, old, default=f"gnulinux-advanced-{UUID}>gnulinux-{old}-advanced-{UUID}")
    plan = armed(tree, "--kernel", new)
    assert f"way back: the firmware's next boot: the running kernel {old}" in plan.to_text()
    assert "next_entry" not in (tree.root / "boot/grub/grubenv").read_text()
    assert not (tree.root / "boot/kexec-bin").exists()


def test_grubenv_block_round_trips_through_grub_editenv(tmp_path):
    path = tmp_path / "grubenv"
    path.write_bytes(grubenv.grubenv_bytes({}))
    subprocess.run(["grub-editenv", str(path), "set", "a=1", "b=x y"], check=True)
    grubenv.set_grubenv(str(path), {"next_entry": "one>two", "a": None})
    listed = subprocess.run(["grub-editenv", str(path), "list"], capture_output=True, text=True, check=True)
    assert listed.stdout.splitlines() == ["b=x y", "next_entry=one>two"]
    reference = tmp_path / "reference"
    subprocess.run(["grub-editenv", str(reference), "create"], check=True)
    subprocess.run(["grub-editenv", str(reference), "set", "b=x y", "next_entry=one>two"], check=True)
    # The same bytes grub-editenv writes, header and padding included.
    assert path.read_bytes() == reference.read_bytes()


def test_via_auto_takes_the_firmware_path_where_kexec_load_is_disabled(machine, capsys, recording_kexec):
    tree, old, new = machine
    write_grub(tree.root, new, old)
    tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n")
    # The dry run names the path and exits 0: through the firmware the kernel's refusal does not apply.
    assert reboot(tree, "--via", "auto") == 0
    out = capsys.readouterr().out
    assert "way back: path: firmware (the doctor predicts kexec cannot load here: kexec_load_disabled (" in out
    plan = planned(tree, "--via", "auto")
    assert firmware.boot(plan, LOAD_ONLY, root=str(tree.root), out=sys.stdout) == 0
    assert not recording_kexec.exists()  # kexec never ran

    # The same verified files, staged where GRUB reads them, with the plan's command line.
    staged = tree.root / "boot/kexec-bin"
    assert (staged / "vmlinuz").read_bytes() == (tree.root / f"boot/vmlinuz-{new}").read_bytes()
    assert (staged / "initrd").read_bytes() == (tree.root / f"boot/initrd.img-{new}").read_bytes()
    custom = tree.root / "boot/grub/custom.cfg"
    text = custom.read_text()
    assert f"menuentry 'kexec-bin: reboot into {new}' --id 'kexec-bin-once' {{" in text
    assert "\tlinux /boot/kexec-bin/vmlinuz root=UUID=2f6b7bb5-6a0d-4d7c-9a59-6d1c8c6f2b0e ro quiet" in text
    assert "crashkernel=256M panic=30\n" in text and "\tinitrd /boot/kexec-bin/initrd\n" in text
    # GRUB's own checker accepts the entry; GRUB's one-shot names it.
    subprocess.run(["grub-script-check", str(custom)], check=True)
    env_block = tree.root / "boot/grub/grubenv"
    listed = subprocess.run(["grub-editenv", str(env_block), "list"], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == ["next_entry=kexec-bin-once"]

    # The next boot of this system removes the entry and the files.
    unit = (tree.root / "etc/systemd/system" / grubenv.CONFIRM_UNIT).read_text()
    arguments = unit.split("--confirm ", 1)[1].split("\n", 1)[0].split()
    assert arguments == ["/boot/grub/grubenv", "kexec-bin-once", "/boot/grub/custom.cfg", "/boot/kexec-bin"]
    source = str(Path(wayback.__file__).parents[1])
    in_tree = (
        [str(tree.root) + path for path in arguments[:1]]
        + arguments[1:2]
        + [str(tree.root) + path for path in arguments[2:]]
    )
    command = [sys.executable, "-m", "kexec_bin.grubenv", "--confirm", *in_tree]
    subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": source})
    assert not custom.exists() and not staged.exists()
    listed = subprocess.run(["grub-editenv", str(env_block), "list"], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == []


def test_the_firmware_path_needs_no_kexec_program(machine, capsys, tmp_path, monkeypatch):
    tree, old, new = machine
    write_grub(tree.root, new, old)
    monkeypatch.setenv("PATH", str(tmp_path))  # no kexec anywhere (a source checkout carries no bundled one)
    assert reboot(tree, "--via", "firmware") == 0
    out = capsys.readouterr().out
    assert "way back: path: firmware (--via firmware)" in out
    assert "kexec command:" not in out  # no kexec runs on this path


def test_via_auto_keeps_kexec_where_the_doctor_finds_nothing_in_the_way(machine):
    tree, _old, _new = machine
    plan = planned(tree, "--via", "auto")
    assert plan.way_back is not None and plan.way_back.via == "kexec"
    assert "way back: path: kexec (the doctor finds nothing that stops a kexec load)" in plan.to_text()


def test_via_firmware_without_grub_is_refused_before_anything_is_written(machine, capsys):
    tree, _old, _new = machine
    assert reboot(tree, "--via", "firmware") == 1  # the plan itself cannot be made
    assert "--via firmware: no GRUB menu" in capsys.readouterr().err
    assert not (tree.root / "boot/kexec-bin").exists()


@pytest.mark.parametrize("login", [False, True])
def test_the_installers_deadline_is_a_startup_script_in_an_initrd(tmp_path, login):
    url = "http://deb.example/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux"
    archive, line = wayback.deadline_archive(url, 0.5, login)
    # One regular file in a newc archive, at the path the installer's startup sources.
    assert archive.startswith(b"070701")
    name_size = int(archive[94:102], 16)
    assert archive[110 : 110 + name_size - 1].decode() == wayback.DEADLINE_SCRIPT
    script = archive[archive.index(b"# kexec-bin") : archive.index(b"TRAILER!!!")].rstrip(b"\0").decode()
    (tmp_path / "deadline").write_text(script)
    subprocess.run(["sh", "-n", str(tmp_path / "deadline")], check=True)  # the shell accepts it
    assert "+ 30 ))" in script and f"wget -q -T 10 -O /dev/null {url}" in script
    assert "[ -d /var/lib/partman ]" in script and "reboot -f" in script
    assert ("[s]shd: installer" in script) is login
    assert line.startswith(f"deadline: unless the installer fetches {url}")
    assert "within 0.5 min, it reboots through the firmware into this system" in line


@pytest.mark.parametrize("minutes", ["0", "-1", "soon"])
def test_a_bad_deadline_is_a_usage_error(capsys, minutes):
    assert main(["netboot", "debian", f"--deadline={minutes}"]) == 64
    assert f"argument --deadline: {minutes!r}: give the minutes as a number above 0" in capsys.readouterr().err


def test_only_netboot_offers_the_installers_deadline(machine, capsys):
    tree, _old, _new = machine
    assert reboot(tree, "--deadline=5") == 64  # reboot boots no installer: the option would do nothing
    assert "unrecognized arguments: --deadline=5" in capsys.readouterr().err


def test_the_doctor_names_the_protections_this_host_has(machine):
    from kexec_bin.doctor import INFO, support

    tree, old, new = machine

    def way_back() -> dict[str, str]:
        findings = support(str(tree.root)).findings
        return {f.check: f.meaning for f in findings if f.check.startswith("way back") and f.status == INFO}

    found = way_back()
    assert set(found) == {f"way back: {name}" for name in ("panic", "one-shot entry", "deadline", "watchdog")}
    assert found["way back: one-shot entry"].startswith("no GRUB menu: kexec-bin sets no one-shot entry")
    assert found["way back: watchdog"].startswith("no watchdog")
    write_grub(tree.root, new, old)
    tree.write("/sys/class/watchdog/watchdog0/identity", "i6300ESB timer\n")
    found = way_back()
    assert found["way back: one-shot entry"].startswith("GRUB: a one-shot next_entry in /boot/grub/grubenv")
    assert (
        "stopped by kexec too, unless this kernel booted with watchdog.stop_on_reboot=0" in found["way back: watchdog"]
    )


def test_via_firmware_never_replaces_a_custom_cfg_it_did_not_write(machine):
    tree, old, new = machine
    write_grub(tree.root, new, old)
    custom = tree.write("/boot/grub/custom.cfg", "menuentry 'mine' {\n\ttrue\n}\n")
    plan = planned(tree, "--via", "firmware")
    with pytest.raises(PlanError, match=r"/boot/grub/custom\.cfg exists and is not kexec-bin's"):
        firmware.boot(plan, LOAD_ONLY, root=str(tree.root), out=sys.stdout)
    assert custom.read_text() == "menuentry 'mine' {\n\ttrue\n}\n"
    assert "next_entry" not in (tree.root / "boot/grub/grubenv").read_text()
    assert not (tree.root / "boot/kexec-bin").exists()


def test_panic_goes_before_the_arguments_for_init():
    # Words after a lone "--" are init's arguments, not the kernel's: panic= must come before them.
    line, added, _ = wayback.with_panic("root=/dev/vda init=/usr/bin/sleep -- infinity", 30)
    assert (line, added) == ("root=/dev/vda init=/usr/bin/sleep panic=30 -- infinity", 30)
    # A panic= among init's arguments is init's: the kernel still gets one.
    line, added, _ = wayback.with_panic("quiet -- panic=5", 30)
    assert (line, added) == ("quiet panic=30 -- panic=5", 30)
