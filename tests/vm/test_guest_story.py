"""The user story end to end: in a plain Debian guest without kexec-tools, pip install the wheel and reboot with it."""

from __future__ import annotations

import json
import secrets

import pytest

from kexec_build.vm.debian_guest import debian_guest, pip_install, start_with_wheel
from kexec_build.vm.guests import COMMAND_SECONDS, kexec_exec

pytestmark = pytest.mark.vm

# pip under TCG: unpacking and byte-compiling the runtime takes a while.


def _json(output: str) -> dict:
    """The JSON object a command printed (the guest boots `quiet`, so no kernel line interrupts it)."""
    return json.loads(output[output.index("{") : output.rindex("}") + 1])


def test_pip_installed_wheel_reboots_a_debian_guest(vm, tmp_path):
    guest = debian_guest()
    machine, wheel = start_with_wheel(vm.start, tmp_path, cmdline=f"vmtest.nonce={secrets.token_hex(8)}")
    assert machine.run("command -v kexec || echo absent") == "absent"

    pip_install(machine, f"/mnt/{wheel}")
    doctor = _json(machine.run("kexec-bin doctor --json", COMMAND_SECONDS))
    assert doctor["verdict"] == "ok", doctor
    which = _json(machine.run("kexec-bin which --json", COMMAND_SECONDS))
    assert which["source"] == "bundled", which
    assert which["path"].endswith("/kexec_bin/bin/kexec"), which

    first = machine.run("cat /proc/cmdline")
    machine.run(
        f"kexec --load /boot/vmlinuz-{guest.version} --initrd=/boot/initrd.img-{guest.version} --reuse-cmdline",
        COMMAND_SECONDS,
    )
    assert kexec_exec(machine) == first
