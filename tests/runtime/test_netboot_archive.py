"""`kexec-bin netboot debian --dry-run` with no --mirror, against the Debian archive in this host's apt
sources: the mirror a new user really has. Whatever that mirror serves (fresh images, stale ones,
none), the plan must be a verified one, by one of the two signed paths."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kexec_bin.debian import archive
from tests.runtime.installed import system_kexec

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(not Path(archive.HOST_KEYRING).is_file(), reason="needs Debian's archive keyring"),
]


@pytest.mark.parametrize(("release", "arch", "number"), [("trixie", "amd64", "13"), ("bookworm", "arm64", "12")])
def test_the_hosts_own_apt_mirror_gives_a_verified_plan(tmp_path, release, arch, number):
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/cmdline").write_text("console=ttyS0\n")
    (root / "proc/meminfo").write_text("MemTotal: 2048000 kB\nMemAvailable: 1900000 kB\n")
    # --root's apt sources are the host's own: the test is about the mirror this machine really has.
    for place in archive.APT_SOURCES:
        if Path(place).is_dir():
            shutil.copytree(place, root / place.lstrip("/"))
        elif Path(place).is_file():
            (root / place.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(place, root / place.lstrip("/"))
    sbin = system_kexec(tmp_path / "sbin", "exit 0\n")
    done = subprocess.run(
        [sys.executable, "-m", "kexec_bin", "netboot", "debian", "--root", str(root), "--dry-run"]
        + ["--release", release, "--arch", arch, "--network", "dhcp"],
        capture_output=True,
        text=True,
        timeout=1200,
        env={
            "PATH": f"{sbin}:/usr/bin:/bin",
            "PYTHONPATH": str(PROJECT / "src"),
            "KEXEC_BIN_PREFER": "system",
            "HOME": str(Path.home()),  # the user's download cache: a second run reuses the 150 MiB package
        },
    )
    assert done.returncode == 0, done.stderr
    assert f"installer, netboot, {arch}" in done.stdout and f"Codename {release}" in done.stdout
    assert re.search(r"^  - mirror: (https?|file)://\S+, the host's", done.stdout, re.M), done.stdout
    assert re.search(r"InRelease: good signature by .*\[[0-9A-F]{40}\]", done.stdout)
    path = re.search(r"^  - (images|pool) path: (.*)$", done.stdout, re.M)
    assert path, done.stdout
    if path.group(1) == "pool":
        assert f"using the signed package debian-installer-{number}-netboot-{arch} " in path.group(2)
