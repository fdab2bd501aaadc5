"""The boundary's and the doctor's small promises (issue 17, items 13 and 15): the right code, the real cause, once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import kexec_bin
from kexec_bin.cli import main
from kexec_bin.doctor import support
from kexec_bin.errors import EXIT_IO, EXIT_TEMPORARY, EXIT_USAGE, UsageError, guarded

from .conftest import set_options

SOURCE = Path(__file__).resolve().parents[2] / "src"


def kexec_bin_process(*args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kexec_bin", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SOURCE)},
    )


@pytest.mark.parametrize("command", [[], ["reboot"], ["netboot"], ["iso"]])
def test_help_into_a_full_disk_is_exit_74(command):
    with open("/dev/full", "w") as full:
        result = kexec_bin_process(*command, "--help", stdout=full)
    assert result.returncode == EXIT_IO
    assert result.stderr == "kexec-bin: cannot write the output: No space left on device\n"


def test_version():
    result = kexec_bin_process("--version")
    assert result.returncode == 0 and result.stdout.startswith("kexec-bin "), result


def test_an_oserror_that_is_not_the_output_names_its_file(tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.write_text("a file where a folder should be\n")

    def body() -> int:
        (cache / "downloads").mkdir()
        return 0

    assert guarded("kexec-bin", body) == EXIT_IO
    err = capsys.readouterr().err
    assert err == f"kexec-bin: {cache / 'downloads'}: Not a directory\n"


def test_an_address_not_on_this_host_is_a_network_failure(capsys):
    def body() -> int:
        with socket.socket() as sock:
            sock.bind(("192.0.2.1", 0))  # TEST-NET-1: never one of this machine's addresses
        return 0

    assert guarded("kexec-bin", body) == EXIT_TEMPORARY
    assert capsys.readouterr().err == "kexec-bin: Cannot assign requested address\n"


def test_arguments_that_do_not_fit_the_api_are_a_usage_error():
    with pytest.raises(UsageError) as raised:
        kexec_bin.load("/boot/vmlinuz", None, None, True)
    assert "takes from 1 to 3 positional arguments but 4 were given" in str(raised.value)
    assert raised.value.exit_code == EXIT_USAGE


def test_the_doctor_gives_each_fix_once_and_no_crash_advice_without_kexec(tree, debian_kernel, capsys):
    tree.set_config(set_options(debian_kernel.config, KEXEC="n", KEXEC_FILE="n", KEXEC_CORE="n", CRASH_DUMP="n"))
    tree.remove("/sys/kernel/kexec_loaded")
    tree.remove("/sys/kernel/kexec_crash_size")
    main(["doctor", "--root", str(tree.root)])
    out = capsys.readouterr().out
    assert out.count("fix: boot a kernel built with CONFIG_KEXEC=y") == 1, out
    assert "crashkernel" not in out


def test_lockdown_unknown_because_securityfs_is_not_mounted(tree, capsys):
    tree.remove("/sys/kernel/security/lockdown")  # an empty /sys/kernel/security: not mounted
    report = support(str(tree.root))
    (lockdown,) = [finding for finding in report.findings if finding.check == "lockdown"]
    assert lockdown.meaning == "lockdown state unknown (securityfs is not mounted)"
    assert lockdown.commands == ("mount -t securityfs securityfs /sys/kernel/security",)


def test_a_carried_memdisk_that_is_not_the_built_one_is_refused(tmp_path):
    from .installed import install

    installed = install(tmp_path / "installed", Path("/bin/echo"))
    carried = installed.site / "kexec_bin/boot/memdisk"
    carried.parent.mkdir()
    carried.write_bytes(b"not the memdisk this wheel was built with\n")
    result = subprocess.run(
        [
            str(installed.venv / "bin/python"),
            "-c",
            "from kexec_bin.stories import iso; iso.memdisk_file('/nonexistent')",
        ],
        capture_output=True,
        text=True,
    )
    assert "VerificationError" in result.stderr
    assert f"{carried}, carried in this wheel, is not the file it was built with (sha256 " in result.stderr


def test_a_full_scratch_disk_is_named_not_taken_for_the_output(tmp_path, capsys):
    full = tmp_path / "tmp"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:

        def body() -> int:
            with open(full / "kernel", "wb") as scratch:  # as a dry run extracts an image's kernel to $TMPDIR
                scratch.write(bytes(1 << 20))
            return 0

        assert guarded("kexec-bin", body) == EXIT_IO
    finally:
        subprocess.run(["umount", str(full)], check=True)
    err = capsys.readouterr().err
    assert err.startswith("kexec-bin: No space left on device (a full file system: the temporary folder "), err
