"""Which program runs, as root, when PATH, the folders on it or the bundled binary are not what they should be."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kexec_bin.errors import EXIT_UNAVAILABLE
from tests.runtime.installed import install, run_kexec, system_kexec, version_of, without_host_kexec

# Each case expects the bundled kexec when the planted one is refused: no host kexec-tools may come between.
pytestmark = without_host_kexec
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the ownership rule applies to root only: run the tests as root")


def planted(folder: Path, marker: Path) -> Path:
    """A `kexec` that only leaves `marker` behind: proof that it ran."""
    return system_kexec(folder, f"touch {marker}\n")


def which(wheel, path, cwd=None):
    result = subprocess.run(
        [str(wheel.kexec_bin), "which", "--json"], capture_output=True, text=True, cwd=cwd, env={"PATH": path}
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("entry", ["", ".", "sbin"])
def test_relative_path_entries_are_not_searched(tmp_path, entry):
    wheel = install(tmp_path / "wheel", Path("/bin/echo"))
    marker = tmp_path / "ran"
    folder = planted(tmp_path / "sbin", marker)
    path = f"{entry}:{wheel.scripts}:/usr/bin:/bin"
    cwd = folder if entry != "sbin" else tmp_path
    result = subprocess.run(
        [str(wheel.kexec), "--version"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": path, "KEXEC_BIN_NO_CHECK": "1"},
    )
    assert (result.returncode, result.stdout.splitlines()[0]) == (0, version_of(wheel.bundled))
    assert not marker.exists()
    answer = which(wheel, path, cwd=cwd)
    assert answer["source"] == "bundled"
    assert answer["skipped"][0] == {
        "path": os.path.join(entry, "kexec"),
        "reason": f"PATH entry {entry!r} is not absolute: it means the current folder",
    }
    own_script = {"path": str(wheel.kexec), "reason": "a kexec-bin `kexec` script, not kexec-tools"}
    assert answer["skipped"][1:] == [own_script]


@as_root
def test_a_kexec_owned_by_another_user_does_not_run_as_root(tmp_path):
    wheel = install(tmp_path / "wheel", Path("/bin/echo"))
    marker = tmp_path / "ran"
    folder = planted(tmp_path / "sbin", marker)
    os.chown(folder / "kexec", 1000, 1000)
    result = run_kexec(wheel, "--version", path=[folder])
    assert result.stdout.splitlines()[0] == version_of(wheel.bundled) and not marker.exists()
    skipped, *_ = which(wheel, f"{folder}:/usr/bin:/bin")["skipped"]
    assert skipped == {
        "path": str(folder / "kexec"),
        "reason": "it is owned by uid 1000, not root: root runs only what root alone can change",
    }


@as_root
@pytest.mark.parametrize("mode", [0o775, 0o757, 0o1777])
def test_a_kexec_in_a_folder_others_may_write_does_not_run_as_root(tmp_path, mode):
    wheel = install(tmp_path / "wheel", Path("/bin/echo"))
    marker = tmp_path / "ran"
    folder = planted(tmp_path / "sbin", marker)
    folder.chmod(mode)
    result = run_kexec(wheel, "--version", path=[folder])
    assert result.stdout.splitlines()[0] == version_of(wheel.bundled) and not marker.exists()
    skipped, *_ = which(wheel, f"{folder}:/usr/bin:/bin")["skipped"]
    assert skipped["reason"].startswith(f"its folder {folder} is writable by group or others (mode {mode:o})")


@as_root
def test_a_root_owned_kexec_through_a_symlink_runs_as_its_real_path(tmp_path):
    wheel = install(tmp_path / "wheel", Path("/bin/echo"))
    real = system_kexec(tmp_path / "real", 'echo "$0"\n')
    links = tmp_path / "links"
    links.mkdir()
    (links / "kexec").symlink_to(real / "kexec")
    assert run_kexec(wheel, "-e", path=[links]).stdout == f"{real / 'kexec'}\n"


def test_a_wrapper_that_runs_another_venvs_kexec_is_a_loop_not_a_hang(tmp_path):
    other = install(tmp_path / "other", Path("/bin/false"))
    wheel = install(tmp_path / "wheel", Path("/bin/echo"))
    wrapper = system_kexec(tmp_path / "wrapper", f'exec {other.kexec} "$@"\n')
    path = f"{wrapper}:{wheel.scripts}:{other.scripts}:/usr/bin:/bin"
    result = subprocess.run(
        [str(wheel.kexec), "--version"], capture_output=True, text=True, timeout=60, env={"PATH": path}
    )
    assert result.returncode == EXIT_UNAVAILABLE
    assert f"kexec programs call each other in a loop: {wrapper / 'kexec'} was chosen" in result.stderr
    assert f"this kexec-bin script ({other.kexec})" in result.stderr and "KEXEC_BIN_PREFER=bundled" in result.stderr


def test_a_wrapper_may_run_another_venvs_bundled_kexec(tmp_path):
    # Not a loop: the second script is told to run its own binary.
    other = install(tmp_path / "other", Path("/bin/echo"))
    wheel = install(tmp_path / "wheel", Path("/bin/false"))
    wrapper = system_kexec(tmp_path / "wrapper", f'KEXEC_BIN_PREFER=bundled exec {other.kexec} "$@"\n')
    result = subprocess.run(
        [str(wheel.kexec), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{wrapper}:/usr/bin:/bin"},
    )
    assert (result.returncode, result.stdout.splitlines()[0]) == (0, version_of(other.bundled))


@pytest.mark.parametrize("damage", ["truncated", "replaced"])
@pytest.mark.parametrize("operation", [["--load", "/boot/vmlinuz"], ["-e"], ["-p", "/boot/vmlinuz"]])
def test_a_damaged_bundled_binary_never_loads_or_boots(tmp_path, damage, operation):
    wheel = install(tmp_path, Path("/bin/echo"))
    if damage == "truncated":  # the ELF header still says x86_64: only the hash tells
        wheel.bundled.write_bytes(wheel.bundled.read_bytes()[:4096])
    else:
        shutil.copy2("/usr/bin/id", wheel.bundled)
    result = run_kexec(wheel, *operation, KEXEC_BIN_NO_CHECK="")
    assert (result.returncode, result.stdout) == (EXIT_UNAVAILABLE, "")
    assert f"the bundled kexec ({wheel.bundled}) is not the program this wheel was built with" in result.stderr
    assert "reinstall kexec-bin" in result.stderr


def test_which_reports_a_replaced_bundled_binary(tmp_path):
    wheel = install(tmp_path, Path("/bin/echo"))
    shutil.copy2("/usr/bin/id", wheel.bundled)
    result = subprocess.run(
        [str(wheel.kexec_bin), "which"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == EXIT_UNAVAILABLE and "not the program this wheel was built with" in result.stderr


def test_the_doctor_blocks_on_a_replaced_bundled_binary(tmp_path, tree):
    wheel = install(tmp_path, Path("/bin/echo"))
    shutil.copy2("/usr/bin/id", wheel.bundled)
    result = subprocess.run(
        [str(wheel.kexec_bin), "doctor", "--json", "--root", str(tree.root)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    (program,) = [f for f in json.loads(result.stdout)["findings"] if f["check"] == "program"]
    assert result.returncode == 1 and program["status"] == "blocked"
    assert "not the program this wheel was built with" in program["fix"]
