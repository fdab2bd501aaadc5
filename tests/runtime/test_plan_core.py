"""The plan core shared by every story command: its refusals, its text, its options and its boot path.

Over the doctor's trees (tests/runtime/conftest.py) with real Debian kernels, and a real tmpfs
mount for the read-only remount.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kexec_bin.cli import main
from kexec_bin.doctor import BLOCKED, support

from .conftest import set_options
from .installed import install, system_kexec
from .kernel_trees import install_kernel, package_tree


@pytest.fixture
def machine(tree):
    """The doctor's healthy tree with bookworm's kernel installed in /boot."""
    return tree, install_kernel(tree.root, package_tree("bookworm"))


def without_kexec(tree, debian_kernel) -> None:
    """The tree's kernel built without kexec (as this machine's, CONFIG_KEXEC not set)."""
    tree.set_config(set_options(debian_kernel.config, KEXEC="n", KEXEC_FILE="n", KEXEC_CORE="n", CRASH_DUMP="n"))
    tree.remove("/sys/kernel/kexec_loaded")


@pytest.mark.parametrize("value", ["nan", "inf", "-3", "soon"])
def test_exec_after_must_be_a_finite_number_of_seconds(machine, recording_kexec, capsys, value):
    tree, _release = machine
    assert main(["reboot", "--root", str(tree.root), "--exec-after", value, "--yes"]) == 64
    assert f"--exec-after: {value!r} is not a number of seconds: give 0 or more" in capsys.readouterr().err
    assert not recording_kexec.exists()  # nothing loaded


def test_escape_sequences_are_shown_escaped_in_the_plan(machine, recording_kexec, capsys):
    tree, _release = machine
    hidden = "quiet \x1b[8minit=/bin/sh\x1b[0m \u202eevil"
    assert main(["reboot", "--root", str(tree.root), "--command-line", hidden]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "command line: quiet \\e[8minit=/bin/sh\\e[0m \\u202eevil panic=30\n" in out


def test_a_dry_run_on_a_kernel_without_kexec_shows_the_plan_and_says_it_would_be_refused(
    machine, debian_kernel, recording_kexec, capsys
):
    tree, release = machine
    without_kexec(tree, debian_kernel)
    assert main(["reboot", "--root", str(tree.root)]) == 1
    out, err = capsys.readouterr()
    assert f"plan: reboot into {release}" in out
    assert err.startswith("kexec-bin: this plan would be refused here: the kernel will refuse to load a kernel:")
    assert "the kernel was built without kexec" in err
    assert not recording_kexec.exists()


def test_no_kernel_on_a_host_without_kexec_names_the_kernel_first(tree, debian_kernel, recording_kexec, capsys):
    (tree.root / "boot").mkdir()
    without_kexec(tree, debian_kernel)
    assert main(["reboot", "--root", str(tree.root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kexec-bin: the kernel will refuse to load a kernel:"), err
    assert "(and no plan could be made: no kernel found" in err


def test_netboot_load_on_a_host_without_kexec_is_refused_before_any_download(recording_kexec, capsys):
    # A load is this host's (--root goes with --dry-run only), so this needs a host whose kernel refuses
    # kexec, as the machines this project is developed on do (CONFIG_KEXEC not set).
    if support("/").verdict != BLOCKED:
        pytest.skip("this host's kernel can load kernels: the refusal needs one that cannot")
    # Port 9 (discard) on loopback: a download would fail with its own code (75), not the kernel's (1).
    status = main(["netboot", "debian", "--mirror", "http://127.0.0.1:9/x", "--network", "dhcp", "--load-only"])
    err = capsys.readouterr().err
    assert status == 1, err
    assert err.startswith("kexec-bin: the kernel will refuse to load a kernel:"), err
    assert not recording_kexec.exists()


def test_a_tree_is_never_loaded_into_this_host(tree, recording_kexec, capsys):
    status = main(["netboot", "debian", "--root", str(tree.root), "--mirror", "http://127.0.0.1:9/x", "--yes"])
    assert status == 64
    assert "--yes: a tree is only inspected, while the kernel that would load is this host's" in capsys.readouterr().err
    assert not recording_kexec.exists()


@pytest.fixture
def scratch_mount(tmp_path):
    """A real tmpfs mounted with a /dev/ source, as a disk's file system shows in /proc/self/mounts."""
    point = tmp_path / "disk"
    point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "/dev/kexec-bin-test", str(point)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield point
    subprocess.run(["umount", str(point)], check=True)


def _options(point: Path) -> list[str]:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(point):
            return fields[3].split(",")
    raise AssertionError(f"{point} is not mounted")


def test_a_failed_exec_without_systemd_leaves_the_file_systems_writable(
    tree, tmp_path, monkeypatch, scratch_mount, capsys
):
    from kexec_bin.errors import KexecError
    from kexec_bin.plan.boot import boot_loaded

    sbin = system_kexec(tmp_path / "sbin", 'echo "kexec: nothing loaded" >&2; exit 1\n')
    monkeypatch.setenv("PATH", f"{sbin}:/usr/bin:/bin")
    monkeypatch.setenv("KEXEC_BIN_PREFER", "system")
    # Only the test's own mount is given: the host's file systems are never remounted by a test.
    mounts = [["/dev/kexec-bin-test", str(scratch_mount), "tmpfs", "rw,relatime", "0", "0"]]
    with pytest.raises(KexecError) as raised:
        boot_loaded(root=str(tree.root), mounts=mounts)
    assert "rw" in _options(scratch_mount)
    assert f"the boot failed after the file systems were made read-only; writable again: {scratch_mount}" in str(
        raised.value
    )
    assert "no systemd; sync, remount every filesystem read-only, then kexec -e" in capsys.readouterr().out


def test_iso_dry_run_on_a_host_without_kexec_shows_the_plan_and_says_it_would_be_refused(tmp_path):
    if support("/").verdict != BLOCKED:
        pytest.skip("this host's kernel can load kernels: the refusal needs one that cannot")
    from kexec_build.testbed import iso_images

    image = iso_images.loopback_image(tmp_path)
    installed = install(tmp_path / "installed", Path("/bin/echo"))
    result = subprocess.run(
        [str(installed.kexec_bin), "iso", str(image), "--dry-run"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result
    assert "plan: " in result.stdout and "dry run: nothing loaded" in result.stdout
    assert result.stderr.startswith("kexec-bin: this plan would be refused here: the kernel will refuse"), result.stderr


def test_the_probes_never_wait_on_a_fifo(tmp_path):
    # A FIFO planted where /proc/meminfo, /proc/cmdline and the console list should be: read by the
    # doctor's reader, each probe answers "unknown" at once (a plain open() would wait forever).
    import os
    import sys

    for path in ("proc/meminfo", "proc/cmdline", "sys/class/tty/console/active"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(tmp_path / path)
    probe = (
        "import sys; from kexec_bin.plan import probes; "
        "print(probes.available_memory(sys.argv[1]), probes.console_parameters('auto', sys.argv[1]))"
    )
    source = str(Path(__file__).resolve().parents[2] / "src")
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": source},
    )
    assert result.returncode == 0, result.stderr
    none_found = "console: none found (no console= in /proc/cmdline, no /sys/class/tty/console/active)"
    assert result.stdout == f"None ([], {none_found!r})\n"


def test_escape_sequences_in_an_image_are_shown_escaped_in_its_list_and_plan(tmp_path):
    from kexec_build.testbed import iso_images

    hidden = "Install\x1b[8m init=/bin/sh\x1b[0m"
    grub = f"menuentry '{hidden}' {{\n  linux /vmlinuz quiet\x1b[8m init=/bin/sh\n  initrd /initrd.gz\n}}\n"
    image = iso_images.config_image(
        tmp_path, "escapes", {"boot/grub/grub.cfg": grub, "vmlinuz": b"kernel", "initrd.gz": b"initrd"}
    )
    installed = install(tmp_path / "installed", Path("/bin/echo"))
    for mode in ("--list", "--dry-run"):
        result = subprocess.run(
            [str(installed.kexec_bin), "iso", str(image), mode, "--console", "none"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "KEXEC_BIN_NO_CHECK": "1"},
        )
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout, mode
        assert "Install\\e[8m init=/bin/sh\\e[0m" in result.stdout, result.stdout
        assert "quiet\\e[8m init=/bin/sh" in result.stdout, result.stdout
