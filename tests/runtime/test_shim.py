"""The `kexec` console script as real processes: which program runs, with what, and what comes back."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from kexec_bin.errors import EXIT_UNAVAILABLE, EXIT_USAGE
from kexec_bin.shim import operation_of
from kexec_build.commands import run
from tests.runtime.installed import (
    copied_system_kexec,
    install,
    run_kexec,
    system_kexec,
    version_of,
    without_host_kexec,
)


@without_host_kexec
def test_without_system_kexec_the_bundled_binary_runs(tmp_path, debian_kexec):
    wheel = install(tmp_path, debian_kexec.path)
    result = run_kexec(wheel, "--version", LD_LIBRARY_PATH=debian_kexec.library_path)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == version_of(debian_kexec.path, LD_LIBRARY_PATH=debian_kexec.library_path)


def test_system_kexec_earlier_on_path_wins(tmp_path, debian_kexec):
    wheel = install(tmp_path, Path("/bin/echo"))
    system = copied_system_kexec(tmp_path / "sbin", debian_kexec.path)
    result = run_kexec(wheel, "--version", path=[system], LD_LIBRARY_PATH=debian_kexec.library_path)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == version_of(debian_kexec.path, LD_LIBRARY_PATH=debian_kexec.library_path)


@pytest.mark.parametrize("prefer", ["bundled", "system"])
def test_prefer_overrides_both_ways(tmp_path, debian_kexec, prefer):
    # The bundled "kexec" is coreutils' echo, so its --version tells the two programs apart.
    wheel = install(tmp_path, Path("/bin/echo"))
    system = copied_system_kexec(tmp_path / "sbin", debian_kexec.path)
    result = run_kexec(wheel, "--version", path=[system], KEXEC_BIN_PREFER=prefer, LD_LIBRARY_PATH=debian_kexec.library_path)
    expected = version_of(wheel.bundled if prefer == "bundled" else system / "kexec",
                          LD_LIBRARY_PATH=debian_kexec.library_path)
    assert (result.returncode, result.stdout.splitlines()[0]) == (0, expected)


@without_host_kexec
def test_prefer_system_without_kexec_tools_says_so(tmp_path):
    wheel = install(tmp_path, Path("/bin/echo"))
    result = run_kexec(wheel, "--version", KEXEC_BIN_PREFER="system")
    assert result.returncode == EXIT_UNAVAILABLE
    assert "KEXEC_BIN_PREFER=system but no kexec-tools may run" in result.stderr


def test_prefer_with_a_typo_names_the_choices(tmp_path):
    result = run_kexec(install(tmp_path, Path("/bin/echo")), "--version", KEXEC_BIN_PREFER="sytem")
    assert result.returncode == EXIT_USAGE and "'system' or 'bundled'" in result.stderr


def test_arguments_reach_kexec_verbatim(tmp_path):
    system = system_kexec(tmp_path / "sbin", 'printf "%s\\n" "$@"\n')
    args = ["--load", "linux", "--initrd=initrd.gz", '--command-line=console=ttyS0 priority=low "quoted" x=\'y\'', "", "--"]
    result = run_kexec(install(tmp_path, Path("/bin/echo")), *args, path=[system])
    assert result.stdout.split("\n")[:-1] == args


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_status_is_kexecs_own(tmp_path, code):
    system = system_kexec(tmp_path / "sbin", f"exit {code}\n")
    assert run_kexec(install(tmp_path, Path("/bin/echo")), "-e", path=[system]).returncode == code


@without_host_kexec
def test_real_kexec_failure_status(tmp_path, debian_kexec):
    wheel = install(tmp_path, debian_kexec.path)
    result = run_kexec(wheel, "--no-such-option", LD_LIBRARY_PATH=debian_kexec.library_path)
    assert result.returncode == 1 and "Usage: kexec" in result.stdout


def test_death_by_signal_is_kexecs_own(tmp_path):
    system = system_kexec(tmp_path / "sbin", "kill -TERM $$\n")
    result = run_kexec(install(tmp_path, Path("/bin/echo")), "-e", path=[system])
    assert result.returncode == -signal.SIGTERM


def test_the_process_is_replaced_not_wrapped(tmp_path):
    # $PPID of the program is the caller of `kexec` (here: this test), not a Python wrapper.
    system = system_kexec(tmp_path / "sbin", 'echo "$PPID"\n')
    result = run_kexec(install(tmp_path, Path("/bin/echo")), "-e", path=[system])
    assert int(result.stdout) == os.getpid()


@without_host_kexec
def test_another_kexec_bin_script_on_path_is_not_the_system_kexec(tmp_path):
    other = install(tmp_path / "other-venv", Path("/bin/false"))
    wheel = install(tmp_path / "venv", Path("/bin/echo"))
    result = run_kexec(wheel, "--version", path=[other.scripts])
    assert (result.returncode, result.stdout.splitlines()[0]) == (0, version_of(wheel.bundled))


@without_host_kexec
def test_bundled_binary_without_exec_bit(tmp_path):
    wheel = install(tmp_path, Path("/bin/echo"))
    wheel.bundled.chmod(0o644)
    result = run_kexec(wheel, "--version")
    assert result.returncode == EXIT_UNAVAILABLE
    assert "not executable (mode 644)" in result.stderr and f"chmod +x {wheel.bundled}" in result.stderr


@without_host_kexec
def test_wheel_for_another_machine(tmp_path):
    wheel = install(tmp_path, Path("/bin/echo"), target="aarch64")
    result = run_kexec(wheel, "--version")
    assert result.returncode == EXIT_UNAVAILABLE
    assert f"built for aarch64 but this machine is {os.uname().machine}" in result.stderr


@pytest.mark.cross  # compiles with aarch64-linux-gnu-gcc
@without_host_kexec
def test_bundled_binary_for_another_cpu(tmp_path):
    # A real aarch64 program: qemu-user's binfmt handler would even run it, so only the header check stops it.
    source = tmp_path / "hello.c"
    source.write_text("int main(void) { return 0; }\n")
    program = tmp_path / "hello-aarch64"
    run("aarch64-linux-gnu-gcc", "-static", "-o", program, source)
    result = run_kexec(install(tmp_path / "wheel", program), "--version")
    assert result.returncode == EXIT_UNAVAILABLE
    assert "is EM_AARCH64, but this wheel is for x86_64 (EM_X86_64)" in result.stderr


@without_host_kexec
def test_source_checkout_names_the_fix(tmp_path):
    result = run_kexec(install(tmp_path, None), "--version")
    assert result.returncode == EXIT_UNAVAILABLE and "inv wheel" in result.stderr


def test_load_is_checked_first_on_this_machine(tmp_path):
    # The check reads this machine's own kernel; the expectation comes from the same doctor in-process.
    from kexec_bin.doctor import BLOCKED, support

    system = system_kexec(tmp_path / "sbin", "echo ran\n")
    result = run_kexec(install(tmp_path, Path("/bin/echo")), "--load", "/boot/vmlinuz", path=[system], KEXEC_BIN_NO_CHECK="")
    if support().state("load") == BLOCKED:
        assert (result.returncode, result.stdout) == (1, "")
        assert "the kernel will refuse to load a kernel" in result.stderr and "KEXEC_BIN_NO_CHECK=1" in result.stderr
    else:
        assert result.stdout == "ran\n"


@pytest.mark.parametrize("args", [["--version"], ["-h"], ["-S"], ["--status", "-p"], ["-u"], []])
def test_information_is_never_checked(args):
    assert operation_of(args) is None


@pytest.mark.parametrize(("args", "operation"), [
    (["-l", "vmlinuz", "--initrd=initrd.img", "--reuse-cmdline"], ("load", "auto")),
    (["--load", "linux", "--command-line=console=ttyS0 priority=low"], ("load", "auto")),
    (["-e"], ("exec", "auto")),
    (["-f", "vmlinuz"], ("load", "auto")),
    (["-p", "vmlinuz", "-s"], ("panic", "kexec_file_load")),
    (["-sl", "vmlinuz"], ("load", "kexec_file_load")),
    (["-c", "-l", "vmlinuz"], ("load", "kexec_load")),
    (["vmlinuz", "--append=quiet"], ("load", "auto")),
    (["-tbzImage64", "-l", "vmlinuz"], ("load", "auto")),
    (["-l", "vmlinuz", "--", "-e"], ("load", "auto")),
])
def test_operation_of_kexec_arguments(args, operation):
    assert operation_of(args) == operation
