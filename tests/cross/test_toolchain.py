"""`inv toolchain`: host packages, per-target sysroots, and the errors that name the fix."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from kexec_build import recipes, sysroot, toolchain
from kexec_build.errors import ToolchainError
from tests.inv import inv

pytestmark = pytest.mark.cross
TARGETS = list(recipes.load().targets)


@pytest.mark.parametrize("name", TARGETS)
def test_each_toolchain_links_and_runs_static_zlib_and_lzma(toolchains, recipe_set, name):
    tools = toolchains[recipe_set.target(name)]
    versions = tools.versions()
    # The probe links every object of both archives and runs under qemu-user (natively for the host).
    assert toolchain.prove(tools) == f"zlib {versions['zlib']} lzma {versions['xz']}"
    assert versions["glibc"] == "2.36" and versions["compiler"].startswith(tools.cc)
    if tools.cross:
        manifest = json.loads(sysroot.manifest_text(tools.sysroot))
        assert set(manifest["packages"]) == set(recipe_set.sysroot_packages)
        assert manifest["architecture"] == tools.target.debian_arch
        env = tools.configure_env()
        assert env["CC"] == f"{tools.target.triplet}-gcc"
        assert f"-I{tools.sysroot}/usr/include" in env["CPPFLAGS"].split()
        assert all((Path(flag[2:]) / "libz.a").is_file() for flag in env["LDFLAGS"].split())


def test_a_second_inv_toolchain_installs_nothing(toolchains):
    again = inv("toolchain", "--arch", "all")
    assert again.returncode == 0, again.stderr
    assert "host packages already installed" in again.stdout
    assert "installing" not in again.stdout
    ready = re.findall(r"^sysroot: (\S+) ready in ", again.stdout, re.M)
    assert len(ready) == len(TARGETS) - 1  # every cross sysroot, none rebuilt


def test_riscv64_sysroot_comes_from_a_later_suite_and_links_with_the_hosts_glibc(isolated, toolchains, recipe_set):
    # bookworm has no riscv64 in its main archive; built afresh in an empty cache.
    riscv64 = recipe_set.target("riscv64")
    lines: list[str] = []
    (tools,) = toolchain.provision([riscv64], recipe_set, log=lines.append).values()
    assert tools.sysroot == Path(os.environ["KEXEC_BIN_CACHE"]) / "sysroots" / "riscv64"
    manifest = json.loads(sysroot.manifest_text(tools.sysroot))
    assert sysroot.host_suite() == "bookworm" and manifest["suite"] == "trixie", lines
    assert any(line.startswith("sysroot: riscv64: not from bookworm: could not download") for line in lines), lines
    assert manifest["proof"] == toolchain.prove(tools)


def test_an_unfinished_sysroot_is_replaced_not_used(isolated, toolchains, recipe_set):
    aarch64 = recipe_set.target("aarch64")
    leftover = sysroot.path(aarch64)
    (leftover / "usr/include").mkdir(parents=True)
    (leftover / "usr/include/zlib.h").write_text("#error half-unpacked\n")
    with pytest.raises(ToolchainError, match="no sysroot with static zlib and liblzma"):
        toolchain.for_target(aarch64, recipe_set)
    (tools,) = toolchain.provision([aarch64], recipe_set, log=lambda line: None).values()
    assert tools.sysroot is not None
    assert "half-unpacked" not in (tools.sysroot / "usr/include/zlib.h").read_text()
    assert [p.name for p in leftover.parent.iterdir() if p.name.startswith(".aarch64-")] == []  # no scratch left


def test_missing_toolchains_are_named_together_with_the_one_command(isolated, toolchains, recipe_set):
    with pytest.raises(ToolchainError) as caught:
        toolchain.for_targets(list(recipe_set.targets.values()), recipe_set)
    message = str(caught.value)
    cross = [name for name in TARGETS if name != recipe_set.native_target().name]
    assert f"no toolchain for {', '.join(cross)}:" in message
    assert f"get them with: inv toolchain --arch {','.join(cross)}" in message
    # The same through the command line, before any build starts.
    result = inv("build", "--arch", "all")
    assert result.returncode == ToolchainError.exit_code
    assert "inv toolchain --arch" in result.stderr and "Traceback" not in result.stderr
    assert not (isolated / "build").exists() or not any((isolated / "build").rglob("kexec"))


def test_a_missing_cross_compiler_names_its_package(toolchains, recipe_set, tmp_path, monkeypatch):
    # A PATH holding the host's gcc but no cross compilers, as on a machine without them.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("gcc", "qemu-aarch64-static"):
        (bin_dir / program).symlink_to(shutil.which(program))
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ToolchainError) as caught:
        toolchain.for_target(recipe_set.target("aarch64"), recipe_set)
    assert "no aarch64-linux-gnu-gcc (package gcc-aarch64-linux-gnu)" in str(caught.value)
    assert "inv toolchain --arch aarch64" in str(caught.value)


def test_a_native_build_needs_no_cross_tools(recipe_set, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcc").symlink_to(shutil.which("gcc"))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("KEXEC_BIN_CACHE", str(tmp_path / "empty-cache"))
    native = toolchain.for_target(recipe_set.native_target(), recipe_set)
    assert (native.cc, native.sysroot, native.emulator()) == ("gcc", None, [])
    assert toolchain.host_packages(native.target, recipe_set) == recipe_set.native_packages


def test_without_root_the_exact_install_commands_are_printed(recipe_set, tmp_path):
    # A recipe copy whose s390x needs a real package this machine does not have installed.
    copy = tmp_path / "recipes"
    shutil.copytree(recipes.RECIPES_DIR, copy)
    targets_file = copy / recipes.TARGETS_FILE
    targets_file.write_text(targets_file.read_text().replace('"gcc-s390x-linux-gnu"', '"gcc-hppa-linux-gnu"'))
    edited = recipes.load(copy)
    assert toolchain.missing_packages(["gcc", "gcc-hppa-linux-gnu"]) == ["gcc-hppa-linux-gnu"]
    with pytest.raises(ToolchainError) as caught:
        toolchain.provision([edited.target("s390x")], edited, as_root=False, log=lambda line: None)
    assert "sudo apt-get install -y --no-install-recommends gcc-hppa-linux-gnu\n" in str(caught.value)
    assert "libc6-dev-s390x-cross" not in str(caught.value)  # only what is missing


def test_a_release_without_a_target_is_a_clear_error(recipe_set):
    result = inv("build", "--arch", "riscv64", "--version", "2.0.25")
    assert result.returncode == 2
    assert "kexec-tools 2.0.25 does not support riscv64" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_sysroot_changed_after_its_proof_is_refused_with_the_fix(isolated, toolchains, recipe_set):
    aarch64 = recipe_set.target("aarch64")
    (tools,) = toolchain.provision([aarch64], recipe_set, log=lambda line: None).values()
    assert tools.sysroot is not None
    tools.fingerprint()  # as proven: accepted
    (archive,) = tools.sysroot.glob("usr/lib/*/libz.a")
    with open(archive, "ab") as stream:
        stream.write(b"\0")
    with pytest.raises(ToolchainError) as caught:
        tools.fingerprint()
    message = str(caught.value)
    assert f"{archive.relative_to(tools.sysroot)}: expected sha256 " in message
    assert "changed after it was proven" in message
    assert f"rm -rf {tools.sysroot} && inv toolchain --arch aarch64" in message
    result = inv("build", "--arch", "aarch64")
    assert result.returncode == ToolchainError.exit_code and "Traceback" not in result.stderr
    assert "changed after it was proven" in result.stderr
