"""Kernel evidence as untrusted input: damaged, hostile or impossible files under --root, read by the real doctor."""

from __future__ import annotations

import gzip
import json
import os
import random
import stat
import sys

import pytest

from kexec_bin.doctor import BLOCKED, OK, UNKNOWN, support
from kexec_bin.errors import EXIT_USAGE
from kexec_bin.kernel import Kernel
from kexec_bin.resolve import Choice
from tests.runtime.installed import SOURCE
from tests.runtime.measure import run_measured

from .conftest import set_options

SYSTEM = Choice("/usr/sbin/kexec", "system", "the host's kexec-tools")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")


def check(tree):
    return support(str(tree.root), SYSTEM)


def garbage(size: int, seed: int) -> bytes:
    """Random bytes, the same in every run: a failure can be replayed, and no draw makes the case pass by chance."""
    return random.Random(seed).randbytes(size)


def doctor(*args, timeout=60):
    """`python -m kexec_bin doctor ARGS` from the source tree, measured."""
    return run_measured(
        [sys.executable, "-m", "kexec_bin", "doctor", *args],
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(SOURCE.parent)},
    )


@pytest.mark.parametrize(
    "config",
    [
        gzip.compress(garbage(4096, 1)),  # a gzip of random bytes
        b"",  # empty
        garbage(4096, 2),  # not gzip at all
    ],
)
def test_an_unreadable_config_gz_is_unknown_and_sysfs_decides(tree, config):
    tree.write("/proc/config.gz", config)
    result = check(tree)
    assert result.verdict == OK  # /sys/kernel/kexec_loaded exists: the kernel has kexec
    (finding,) = [f for f in result.findings if f.check == "kexec"]
    assert f"{tree.root}/proc/config.gz: not a readable kernel config" in finding.evidence


@pytest.mark.parametrize("damage", ["empty", "cut mid-line", "garbage"])
def test_a_damaged_boot_config_is_unknown_not_blocked(tree, debian_kernel, damage):
    tree.remove("/proc/config.gz")
    text = {
        "empty": "",
        "cut mid-line": debian_kernel.config[:5001],
        "garbage": garbage(2000, 3).decode("latin-1").rstrip("\n"),
    }[damage]
    assert not text.endswith("\n")
    tree.write(f"/boot/config-{debian_kernel.release}", text)
    assert check(tree).verdict == OK


def test_sysfs_wins_over_a_config_without_kexec(tree, debian_kernel):
    # A stale config (another kernel's) says no kexec, but only CONFIG_KEXEC_CORE creates kexec_loaded.
    tree.set_config(set_options(debian_kernel.config, KEXEC="n", KEXEC_FILE="n", KEXEC_CORE="n"))
    result = check(tree)
    assert result.verdict == OK
    (finding,) = [f for f in result.findings if f.check == "kexec"]
    assert "not this kernel's config" in finding.evidence


def test_a_config_without_kexec_still_blocks_when_sysfs_agrees(tree, debian_kernel):
    tree.set_config(set_options(debian_kernel.config, KEXEC="n", KEXEC_FILE="n", KEXEC_CORE="n"))
    tree.remove("/sys/kernel/kexec_loaded")
    assert check(tree).verdict == BLOCKED


def test_a_gzip_bomb_is_not_inflated(tree):
    with gzip.open(tree.root / "proc/config.gz", "wb") as bomb:  # 512 MiB of zeros in about 500 KiB
        bomb.write(b"CONFIG_X=y\n")
        for _ in range(512):
            bomb.write(bytes(1024 * 1024))
    result = doctor("--json", "--root", str(tree.root))
    (finding,) = [f for f in json.loads(result.stdout)["findings"] if f["check"] == "kexec"]
    assert "proc/config.gz: not a readable kernel config" in finding["evidence"] and not result.stderr
    assert result.peak_mib < 100


def test_a_huge_sparse_config_is_not_read(tree, debian_kernel):
    tree.remove("/proc/config.gz")
    huge = tree.write(f"/boot/config-{debian_kernel.release}", debian_kernel.config)
    os.truncate(huge, 64 * 1024**3)
    assert Kernel(str(tree.root)).config().value is None


@pytest.mark.parametrize(
    "path", ["/proc/cmdline", "/proc/config.gz", "/sys/kernel/security/lockdown", "/proc/self/status"]
)
def test_a_fifo_does_not_hang_the_doctor(tree, path):
    tree.remove(path)
    os.mkfifo(tree.root / path.lstrip("/"))
    result = doctor("--json", "--root", str(tree.root), timeout=30)
    assert result.returncode in (0, 1) and json.loads(result.stdout)["verdict"] in (OK, UNKNOWN, BLOCKED)
    assert not result.stderr


@as_root
def test_a_device_node_is_not_read(tree):
    tree.remove("/proc/config.gz")
    os.mknod(tree.root / "proc/config.gz", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
    assert Kernel(str(tree.root)).config().value is None


def test_a_symlink_loop_is_unknown(tree):
    tree.remove("/proc/cmdline")
    (tree.root / "proc/cmdline").symlink_to("cmdline")
    assert Kernel(str(tree.root)).cmdline().value is None


@pytest.mark.parametrize("status", ["CapEff:\tzzzz\n", "CapEff:\n", "CapEff: 1 2\n", "CapEff:\t" + "f" * 400 + "\n"])
def test_a_malformed_capeff_is_unknown(tree, status):
    tree.write("/proc/self/status", status)
    (finding,) = [f for f in check(tree).findings if f.check == "capability"]
    assert finding.status == UNKNOWN


@pytest.mark.parametrize("text", ["none [integrity", "[\x1b[31mred]", "[]", "[" * 1000])
def test_a_malformed_lockdown_line_is_unknown(tree, text):
    tree.write("/sys/kernel/security/lockdown", text)
    (finding,) = [f for f in check(tree).findings if f.check == "lockdown"]
    assert finding.status == "info" and "unknown" in finding.meaning


def test_a_crash_size_that_is_not_a_number_is_not_shown(tree):
    tree.write("/sys/kernel/kexec_crash_size", "\x1b]0;owned\x07\n")
    assert all("\x1b" not in f.meaning + f.evidence for f in check(tree).findings)


@pytest.mark.parametrize("release", ["../../outside", "x/../../../outside", "..", "a\0b"])
def test_osrelease_never_leads_outside_the_root(tree, tmp_path, debian_kernel, release):
    # A config outside the tree that would block: it must not be what the doctor reads.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config").write_text(set_options(debian_kernel.config, KEXEC="n", KEXEC_FILE="n", KEXEC_CORE="n"))
    (tmp_path / "config-..").write_text("")
    tree.remove("/proc/config.gz")
    tree.write("/proc/sys/kernel/osrelease", release + "\n")
    result = check(tree)
    assert all(str(outside) not in f.evidence for f in result.findings)
    assert Kernel(str(tree.root)).release() is None


def test_a_symlink_out_of_the_root_is_not_evidence(tree, tmp_path, debian_kernel):
    elsewhere = tmp_path / "elsewhere.gz"
    elsewhere.write_bytes(gzip.compress(set_options(debian_kernel.config, KEXEC="n", KEXEC_FILE="n").encode()))
    tree.remove("/proc/config.gz")
    (tree.root / "proc/config.gz").symlink_to(elsewhere)
    assert Kernel(str(tree.root)).config().value is None


@pytest.mark.parametrize("root", ["", "/no/such/root", "/etc/hostname"])
def test_a_root_that_is_not_a_folder_is_a_usage_error(root):
    result = doctor("--root", root)
    assert result.returncode == EXIT_USAGE and not result.stdout
    assert result.stderr == (
        f"kexec-bin: root {root!r} is not a folder: give the folder that holds proc/, sys/ "
        "and boot/ as seen by the kernel to check (/ for this machine)\n"
    )
