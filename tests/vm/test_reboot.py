"""Real kexec reboots beyond `inv prove`'s one marker per mode: the command line kept, and a chain."""

from __future__ import annotations

import secrets

import pytest

from kexec_build.vm.guests import BOARDS, kexec_reboot

pytestmark = pytest.mark.vm

CHAIN_LENGTH = 5


@pytest.mark.parametrize("target", ["x86_64", "aarch64"])
def test_reuse_cmdline_keeps_the_first_kernels_command_line(vm, target):
    nonce = secrets.token_hex(8)
    machine = vm.boot(target, cmdline=f"vmtest.nonce={nonce}")
    first = machine.run("cat /proc/cmdline")
    second = kexec_reboot(machine, BOARDS[target], "--reuse-cmdline", None)
    assert second == first
    assert f"vmtest.nonce={nonce}" in second.split()


def test_chain_of_five_kexec_reboots(vm):
    machine = vm.boot("x86_64")
    for generation in range(1, CHAIN_LENGTH + 1):
        marker = f"vmtest.generation={generation}-{secrets.token_hex(4)}"
        assert marker in kexec_reboot(machine, BOARDS["x86_64"], "", marker).split()
