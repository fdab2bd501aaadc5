"""`kexec-bin doctor`, `kexec-bin which`, `python -m kexec_bin` and the Python API, run for real."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import kexec_bin
from kexec_bin.doctor import support
from kexec_bin.resolve import Choice
from kexec_build import recipes
from tests.runtime.installed import copied_system_kexec, install, system_kexec, without_host_kexec


@pytest.fixture
def kexec_bin_module(tmp_path):
    """Run `python -m kexec_bin` from an installed layout whose bundled kexec is coreutils' echo."""
    wheel = install(tmp_path / "wheel", Path("/bin/echo"))

    def run(*args):
        python = wheel.venv / "bin" / "python"
        return subprocess.run([str(python), "-m", "kexec_bin", *args], capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin"})

    return run


def test_doctor_on_a_healthy_tree(tree, kexec_bin_module):
    result = kexec_bin_module("doctor", "--root", str(tree.root))
    assert result.returncode == 0
    assert f"read: {tree.root}/proc/config.gz: CONFIG_KEXEC=y" in result.stdout
    assert result.stdout.rstrip().endswith("verdict: ok: kexec can load a kernel here")


def test_doctor_explains_a_blocked_tree(tree, kexec_bin_module):
    tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n")
    result = kexec_bin_module("doctor", "--root", str(tree.root))
    assert result.returncode == 1
    assert "BLOCKED      kexec_load_disabled: loading kernels is switched off" in result.stdout
    assert "fix: the switch is one-way" in result.stdout


def test_doctor_json(tree, kexec_bin_module):
    tree.write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
    result = kexec_bin_module("doctor", "--json", "--root", str(tree.root))
    report = json.loads(result.stdout)
    assert result.returncode == 0  # a signed kernel still loads
    assert report["verdict"] == "signed-only"
    assert report["operations"]["load"] == {"auto": "signed-only", "kexec_load": "blocked",
                                            "kexec_file_load": "signed-only"}
    lockdown = [f for f in report["findings"] if f["check"] == "lockdown"]
    assert {f["status"] for f in lockdown} == {"blocked", "signed-only"}
    assert all(f["evidence"] == f"{tree.root}/sys/kernel/security/lockdown: [integrity]" for f in lockdown)


@without_host_kexec
def test_doctor_explains_this_machine(kexec_bin_module):
    result = kexec_bin_module("doctor", "--json")
    report = json.loads(result.stdout)
    assert report["program"]["source"] == "bundled"
    assert report["verdict"] == support(choice=Choice(report["program"]["path"], "bundled", "")).verdict
    assert result.returncode == (0 if report["verdict"] in ("ok", "signed-only") else 1)
    # Every finding names what it read on this machine.
    assert all(f["evidence"] for f in report["findings"])


@without_host_kexec
def test_which_names_the_bundled_binary(tmp_path):
    wheel = install(tmp_path, Path("/bin/echo"))
    result = subprocess.run([str(wheel.kexec_bin), "which"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0
    assert result.stdout.splitlines()[:2] == [str(wheel.bundled),
                                              "  bundled: no kexec-tools on PATH, /usr/sbin or /sbin; "
                                              f"using the kexec {recipes.load().release().version} bundled in the wheel"]


def test_which_json_names_the_system_kexec(tmp_path, debian_kexec):
    wheel = install(tmp_path, Path("/bin/echo"))
    system = copied_system_kexec(tmp_path / "sbin", debian_kexec.path)
    result = subprocess.run([str(wheel.kexec_bin), "which", "--json"], capture_output=True, text=True,
                            env={"PATH": f"{system}:/usr/bin:/bin"})
    answer = json.loads(result.stdout)
    assert (answer["path"], answer["source"], answer["bundled"]) == (str(system / "kexec"), "system", str(wheel.bundled))


def test_load_builds_kexec_arguments(tree, recording_kexec):
    kexec_bin.load("/boot/vmlinuz-6.1", initrd="/boot/initrd.img-6.1", cmdline="console=ttyS0 priority=low",
                   syscall="file", root=str(tree.root))
    assert recording_kexec.read_text().splitlines() == [
        "--load", "--kexec-file-syscall", "--initrd=/boot/initrd.img-6.1",
        "--command-line=console=ttyS0 priority=low", "--", "/boot/vmlinuz-6.1",
    ]


def test_load_reusing_the_command_line_appends(tree, recording_kexec):
    kexec_bin.load("/boot/vmlinuz", cmdline="quiet", reuse_cmdline=True, root=str(tree.root))
    assert recording_kexec.read_text().splitlines() == [
        "--load", "--kexec-syscall-auto", "--reuse-cmdline", "--append=quiet", "--", "/boot/vmlinuz"]


def test_unload(recording_kexec):
    kexec_bin.unload()
    assert recording_kexec.read_text() == "--unload\n"


def test_load_on_a_blocked_kernel_raises_with_the_explanation(tree, recording_kexec):
    tree.set_capability(False)
    with pytest.raises(kexec_bin.BlockedError, match="run as root") as raised:
        kexec_bin.load("/boot/vmlinuz", root=str(tree.root))
    assert raised.value.support.verdict == "blocked"
    assert not recording_kexec.exists()  # kexec never ran


@pytest.fixture
def debian_kexec_on_path(debian_kexec, tmp_path, monkeypatch):
    """Debian's real kexec as the system kexec of this test process."""
    system = copied_system_kexec(tmp_path / "real", debian_kexec.path)
    monkeypatch.setenv("PATH", f"{system}:/usr/bin:/bin")
    monkeypatch.setenv("LD_LIBRARY_PATH", debian_kexec.library_path)


@pytest.mark.usefixtures("debian_kexec_on_path")
def test_a_failing_kexec_raises_its_own_words(tree, debian_kernel):
    # Not a kernel (the kernel's config file): the real kexec refuses it on any host, and loads nothing.
    not_a_kernel = tree.write("/boot/config", debian_kernel.config)
    with pytest.raises(kexec_bin.KexecError) as raised:
        kexec_bin.load(not_a_kernel, root=str(tree.root))
    assert raised.value.returncode == 255  # kexec-tools returns -1 here
    assert "Cannot determine the file type" in raised.value.output


def test_execute_failure_carries_kexecs_output(tree, tmp_path, monkeypatch):
    system = system_kexec(tmp_path / "sbin", 'echo "Nothing has been loaded!" >&2; exit 1\n')
    monkeypatch.setenv("PATH", f"{system}:/usr/bin:/bin")
    with pytest.raises(kexec_bin.KexecError, match="Nothing has been loaded!"):
        kexec_bin.execute(root=str(tree.root))


def test_loaded(tree):
    assert kexec_bin.loaded(str(tree.root)) is False
    tree.write("/sys/kernel/kexec_loaded", "1\n")
    assert kexec_bin.loaded(str(tree.root)) is True


@without_host_kexec
def test_binary_in_a_source_checkout_names_the_fix():
    with pytest.raises(kexec_bin.BinaryError, match="inv wheel"):
        kexec_bin.binary()


def test_public_names_resolve():
    assert sorted(dir(kexec_bin)) == sorted(kexec_bin.__all__)
    assert all(getattr(kexec_bin, name) for name in kexec_bin.__all__)


@pytest.mark.usefixtures("debian_kexec_on_path")
def test_a_failing_kexec_names_the_doctors_likely_causes(tree, debian_kernel):
    tree.write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
    with pytest.raises(kexec_bin.KexecError) as raised:
        kexec_bin.load(tree.write("/boot/config", debian_kernel.config), root=str(tree.root))
    assert "possible cause: the kernel is locked down (integrity): kexec_load is refused" in str(raised.value)
