"""`kexec-bin reboot` for real: a systemd Debian guest boots its newer kernel, alone and through Ansible.

Every guest runs with -no-reboot: a reset through the firmware would end QEMU, so a guest that
comes back on its next kernel got there by kexec.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

from kexec_build.vm.binaries import wheel_for
from kexec_build.vm.debian_guest import (
    SYSTEMD,
    DebianGuest,
    debian_guest,
    pip_install,
    qemu_drives,
    ssh_forward,
    start_with_wheel,
)
from kexec_build.vm.guests import BOOT_SECONDS, COMMAND_SECONDS, log_path
from kexec_build.vm.machine import Machine

pytestmark = pytest.mark.vm

PLAYBOOK = Path(__file__).resolve().parents[2] / "examples" / "kexec-reboot.yml"
# Two hosts, each booting twice under TCG, plus pip and the module round trips.
PLAYBOOK_SECONDS = 1800


def start_guest(vm, guest: DebianGuest, cmdline: str, qemu_options: Sequence[str] = ()) -> Machine:
    return vm.start(
        "x86_64",
        kernel=guest.kernel,
        initrd=guest.initrd,
        cmdline=guest.cmdline(cmdline),
        qemu_options=[*qemu_drives(guest), *qemu_options],
    )


def next_boot(machine: Machine) -> str:
    """Wait for the next kernel's console loop; return the command line it reports."""
    cmdline = machine.expect(r"VMTEST-CMDLINE: (.*)\n", BOOT_SECONDS).group(1)
    machine.expect("VMTEST-READY", COMMAND_SECONDS)
    return cmdline


def test_reboot_comes_back_in_the_newer_kernel_with_the_same_command_line(vm, tmp_path):
    guest = debian_guest(flavour=SYSTEMD)
    running, newer = guest.versions
    # As GRUB would have started it: BOOT_IMAGE names this kernel's image, so it must not survive.
    machine, wheel = start_with_wheel(
        vm.start,
        tmp_path,
        flavour=SYSTEMD,
        cmdline=f"BOOT_IMAGE=/boot/vmlinuz-{running} vmtest.nonce={secrets.token_hex(8)}",
    )
    assert machine.run("uname -r") == running
    pip_install(machine, f"/mnt/{wheel}")

    # A kernel whose modules are gone is refused before anything is loaded.
    machine.run(f"mv /lib/modules/{newer} /root/modules-away")
    refused = machine.run(f"kexec-bin reboot --kernel /boot/vmlinuz-{newer} --yes; echo status=$?", COMMAND_SECONDS)
    assert f"its modules are missing (/lib/modules/{newer} does not exist)" in refused and "status=1" in refused
    assert machine.run("cat /sys/kernel/kexec_loaded") == "0"
    machine.run(f"mv /root/modules-away /lib/modules/{newer}")

    first = machine.run("cat /proc/cmdline")
    plan = machine.run("kexec-bin reboot --dry-run", COMMAND_SECONDS)
    assert f"kernel  /boot/vmlinuz-{newer}" in plan and f"initrd  /boot/initrd.img-{newer}" in plan
    # Under systemd the command returns at once; a timer runs `systemctl kexec` a second later.
    answer = machine.run("kexec-bin reboot --yes --exec-after 1", COMMAND_SECONDS)
    assert "booting in 1 s: systemd runs `systemctl kexec`" in answer
    # The same command line minus BOOT_IMAGE=, plus the way back's panic= (docs/way-back.md).
    kept = [word for word in first.split() if not word.startswith("BOOT_IMAGE=")]
    assert next_boot(machine).split() == [*kept, "panic=30"]
    assert machine.run("uname -r") == newer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ssh(guest: DebianGuest, port: int, command: str) -> str:
    result = subprocess.run(
        [
            "ssh",
            "-i",
            str(guest.ssh_key),
            "-p",
            str(port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "root@127.0.0.1",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=True,
    )
    return result.stdout.strip()


@pytest.mark.timeout(PLAYBOOK_SECONDS + 2 * BOOT_SECONDS)
def test_ansible_reboots_two_guests_into_their_next_kernel(vm, tmp_path):
    guest = debian_guest(flavour=SYSTEMD)
    running, newer = guest.versions
    ports = {f"guest{index}": _free_port() for index in (1, 2)}
    machines = [start_guest(vm, guest, f"vmtest.host={name}", ssh_forward(port)) for name, port in ports.items()]
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[fleet]\n"
        + "".join(
            f"{name} ansible_host=127.0.0.1 ansible_port={port} ansible_user=root "
            f"ansible_ssh_private_key_file={guest.ssh_key} ansible_python_interpreter=/usr/bin/python3\n"
            for name, port in ports.items()
        )
    )
    assert {_ssh(guest, port, "uname -r") for port in ports.values()} == {running}

    env = {
        **os.environ,
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_HOME": str(tmp_path / "ansible"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_SSH_ARGS": "-o UserKnownHostsFile=/dev/null",
        "ANSIBLE_FORKS": "2",
    }
    log = log_path("ansible-playbook")  # written as it runs, kept with the console logs
    with log.open("w") as output:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                "-v",
                "-i",
                str(inventory),
                str(PLAYBOOK),
                "-e",
                f"kexec_bin_wheel={wheel_for('x86_64')}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=PLAYBOOK_SECONDS,
        )
    recap = log.read_text()
    assert result.returncode == 0, f"ansible-playbook failed ({log}):\n{recap[-4000:]}"
    assert recap.count("failed=0") == 2, recap[-2000:]

    for machine, (name, port) in zip(machines, ports.items()):
        assert f"vmtest.host={name}" in next_boot(machine).split()
        assert _ssh(guest, port, "uname -r") == newer


def test_reboot_without_systemd_remounts_read_only_and_execs(vm, tmp_path):
    # The console guest's init is the harness's shell: no systemd to stop the system.
    machine, wheel = start_with_wheel(vm.start, tmp_path, cmdline=f"vmtest.nonce={secrets.token_hex(8)}")
    pip_install(machine, f"/mnt/{wheel}")
    first = machine.run("cat /proc/cmdline")
    machine.send("kexec-bin reboot --yes --exec-after 0")
    machine.expect("booting: no systemd; sync, remount every filesystem read-only, then kexec -e", COMMAND_SECONDS)
    assert next_boot(machine) == f"{first} panic=30"  # the way back's panic= (docs/way-back.md)
    # Every disk file system went read-only before the exec: none was reported as staying writable.
    assert "stayed writable" not in machine.tail(200)
