"""A real kexec reboot: the first kernel loads a second one with a fresh marker and executes it."""

from __future__ import annotations

import secrets

import pytest

from tests.vm.guests import BOARDS, kexec_reboot

pytestmark = pytest.mark.vm

# kexec-tools' three ways to load: its default (kexec_file_load, then kexec_load), -s and -c.
MODES = {"default": "", "file-load": "-s", "syscall-load": "-c"}
X86_MODES = [pytest.param("x86_64", option, id=f"x86_64-{name}") for name, option in MODES.items()]
# arm64's Debian kernel has no kexec_file_load, so only the paths that can work there.
ARM_MODES = [pytest.param("aarch64", MODES[name], id=f"aarch64-{name}") for name in ("default", "syscall-load")]
# Every other target whose Debian kernel boots in qemu-system here (README: Proven by a real reboot).
OTHER_TARGETS = [
    pytest.param(name, "", id=f"{name}-default") for name in ("i686", "armv7l", "ppc64le", "s390x", "riscv64")
]
CHAIN_LENGTH = 5


@pytest.mark.parametrize(("target", "options"), X86_MODES + ARM_MODES + OTHER_TARGETS)
def test_second_kernel_reports_the_marker(vm, target, options):
    machine = vm.boot(target)
    marker = secrets.token_hex(8)
    cmdline = kexec_reboot(machine, BOARDS[target], options, f"vmtest.marker={marker}")
    assert f"vmtest.marker={marker}" in cmdline.split()


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
