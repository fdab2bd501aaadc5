"""The pipeline end to end with real compilers and the real tarballs from a loopback mirror."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kexec_build import elf, pipeline, steps, toolchain, unpack
from kexec_build.errors import StepError
from kexec_build.paths import PROJECT_ROOT
from tests.inv import INVOKE, inv

pytestmark = pytest.mark.build


@pytest.mark.parametrize("version", ["2.0.32", "2.0.25"])
def test_builds_a_static_stripped_kexec_that_runs(isolated, mirror, recipe_set, version):
    release = recipe_set.release(version)
    target = recipe_set.native_target()
    tools = toolchain.for_target(target, recipe_set)
    built = pipeline.build(release, tools, mirrors=[mirror], log=lambda line: None)
    assert built.rebuilt
    facts = elf.check(built.binary, target)
    assert facts.static
    run = subprocess.run([built.binary, "--version"], capture_output=True, text=True)
    assert f"kexec-tools {version}" in run.stdout + run.stderr
    info = built.read_info()
    assert info["compression"] == {"zlib": True, "lzma": True}
    assert info["kexec_tools"]["sha256"] == release.sha256
    symbols = subprocess.run(["file", built.binary], capture_output=True, text=True).stdout
    assert "stripped" in symbols and "not stripped" not in symbols
    assert sorted(p.name for p in (built.binary.parent / "logs").iterdir()) == ["01-configure.log", "02-make.log", "03-strip.log"]

    again = pipeline.build(release, tools, mirrors=[mirror], log=lambda line: None)
    assert not again.rebuilt and again.binary.read_bytes() == built.binary.read_bytes()


@pytest.fixture
def source_tree(tmp_path, upstream_dir, recipe_set) -> Path:
    return unpack.unpack(upstream_dir / recipe_set.release().source, tmp_path / "src")


def test_a_compiler_that_does_not_exist_fails_configure_with_its_log(tmp_path, source_tree, recipe_set):
    missing = toolchain.Toolchain(target=recipe_set.native_target(), cc="no-such-gcc", sysroot=None)
    runner = steps.Steps(tmp_path / "logs", "kexec-tools test")
    with pytest.raises(StepError) as caught:
        steps.configure(runner, source_tree, recipe_set.release(), missing)
    message = str(caught.value)
    assert "step 'configure' failed" in message
    assert str(tmp_path / "logs" / "01-configure.log") in message
    assert "no-such-gcc" in message  # the log's last lines say what went wrong


def test_configure_dropping_zlib_is_an_error(tmp_path, source_tree, recipe_set, monkeypatch):
    # An autoconf cache answer makes the real configure decide zlib is unusable, as a missing libz.a would.
    monkeypatch.setenv("ac_cv_lib_z_inflateInit_", "no")
    native = toolchain.for_target(recipe_set.native_target(), recipe_set)
    runner = steps.Steps(tmp_path / "logs", f"kexec-tools test {native.target.name}")
    steps.configure(runner, source_tree, recipe_set.release(), native)
    with pytest.raises(StepError, match=r"configure dropped zlib .*HAVE_LIBZ.*inv toolchain --arch x86_64"):
        steps.verify_config(source_tree, f"kexec-tools test {native.target.name}", arch=native.target.name)


def test_two_builds_of_the_same_target_at_once_both_end_well(isolated, mirror):
    env = {**os.environ, "KEXEC_BIN_MIRRORS": mirror}
    first, second = (
        subprocess.Popen([*INVOKE, "build"], cwd=PROJECT_ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    )
    outputs = [first.communicate()[0], second.communicate()[0]]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    # The build table marks a reused build "(no-op)".
    states = sorted("up to date" if "(no-op)" in out else "built" for out in outputs)
    assert states == ["built", "up to date"], outputs


def test_bad_choices_on_the_command_line_exit_with_the_reason(isolated):
    unknown_version = inv("build", "--version", "1.0")
    assert unknown_version.returncode == 2
    assert "unknown kexec-tools version '1.0'" in unknown_version.stderr
    unknown_arch = inv("build", "--arch", "sparc")
    assert unknown_arch.returncode == 2
    assert "unknown arch 'sparc'" in unknown_arch.stderr
    assert "Traceback" not in unknown_arch.stderr + unknown_version.stderr
