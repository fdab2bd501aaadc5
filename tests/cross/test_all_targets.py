"""`inv build --arch all`: every target of a release built side by side, each binary proven."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from kexec_build import elf, pipeline
from tests.inv import inv

pytestmark = pytest.mark.cross


def inv_build_all(version: str, mirror: str) -> str:
    """Run `inv build --arch all --version <version>` against the loopback mirror; return its output."""
    result = inv("build", "--arch", "all", "--version", version, env={**os.environ, "KEXEC_BIN_MIRRORS": mirror})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("version", ["2.0.32", "2.0.25"])
def test_every_target_builds_static_with_zlib_and_lzma_and_runs(
    tmp_path, monkeypatch, mirror, toolchains, recipe_set, version
):
    monkeypatch.setenv("KEXEC_BIN_BUILD", str(tmp_path / "build"))  # the user's cache (sysroots) is kept
    release = recipe_set.release(version)
    targets = recipe_set.select_targets("all", release)
    assert len(targets) == (8 if version == "2.0.32" else 7)  # riscv64 arrived after 2.0.25

    output = inv_build_all(version, mirror)
    header = next(line for line in output.splitlines() if line.startswith("target "))
    assert header.split() == ["target", "time", "size", "zlib/lzma", "runs"]
    for target in targets:
        tools = toolchains[target]
        versions = tools.versions()
        runner = target.qemu if tools.cross else "native"
        row = rf"^{target.name} +[\d.]+s +\d+ KiB +{versions['zlib']}/{versions['xz']} +yes \({runner}\)$"
        assert re.search(row, output, re.M), output

        # Each binary checked again here, independently of the pipeline's own checks.
        binary = pipeline.output_dir(release, target) / "kexec"
        assert elf.check(binary, target).static  # machine, class, byte order, no interpreter, no DT_NEEDED
        info = json.loads((binary.parent / "build-info.json").read_text())
        assert info["compression"] == {"zlib": True, "lzma": True}
        config_h = (binary.parent / "src/include/config.h").read_text()
        assert "#define HAVE_LIBZ 1" in config_h and "#define HAVE_LIBLZMA 1" in config_h
        command = [*tools.emulator(), str(binary)]  # qemu-user unless native
        printed = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
        assert f"kexec-tools {version}" in printed.stdout + printed.stderr, target.name
        usage = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
        assert "--load" in usage.stdout and "--exec" in usage.stdout, target.name

    again = inv_build_all(version, mirror)
    assert len(re.findall(r"^\S+ +[\d.]+s \(no-op\) ", again, re.M)) == len(targets), again
