"""The pipeline end to end with real compilers and the real tarballs from a loopback mirror."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kexec_build import elf, pipeline, steps, toolchain, unpack, wheels
from kexec_build.errors import StepError, WheelError
from kexec_build.paths import PROJECT_ROOT
from kexec_build.sbom import sha256_of
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
    steps = [f"patch-{patch.stem}" for patch in release.patches] + ["configure", "make", "strip"]
    logs = [f"{number:02d}-{step}.log" for number, step in enumerate(steps, 1)]
    assert sorted(p.name for p in (built.binary.parent / "logs").iterdir()) == logs

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


@pytest.fixture(scope="module")
def good_build(tmp_path_factory, recipe_set, upstream_dir) -> Path:
    """One finished native build tree (build root), made once; tests damage copies of it."""
    root = tmp_path_factory.mktemp("good-build")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEXEC_BIN_CACHE", str(root / "cache"))
        pipeline.build(recipe_set.release(), toolchain.for_target(recipe_set.native_target(), recipe_set),
                       mirrors=[str(upstream_dir)], root=root / "build", log=lambda line: None)
    return root / "build"


@pytest.fixture
def build_copy(isolated, good_build, recipe_set) -> Path:
    """A copy of the good build in this test's build tree; returns the folder holding its kexec."""
    shutil.copytree(good_build, isolated / "build", symlinks=True)
    return pipeline.output_dir(recipe_set.release(), recipe_set.native_target(), isolated / "build")


def test_a_damaged_binary_is_built_again_not_reused(build_copy, upstream_dir):
    good = (build_copy / "kexec").read_bytes()
    with open(build_copy / "kexec", "r+b") as binary:
        binary.truncate(33 * 1024)
    result = inv("build", "--mirror", str(upstream_dir), env={**os.environ})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(no-op)" not in result.stdout, result.stdout
    assert "is not what was built and checked" in result.stdout
    assert (build_copy / "kexec").read_bytes() == good


def static_program_that_is_not_kexec() -> Path:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("no busybox (package busybox-static, installed by scripts/setup --test)")
    return Path(busybox)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("truncated", r"not a readable ELF file"),
        ("another static program", r"--version printed .*, expected 'kexec-tools 2\.0\.32'"),
    ],
)
def test_the_wheel_checks_the_very_binary_it_ships(build_copy, recipe_set, upstream_dir, capfd, damage, reason):
    """Even when the build's own record is forged to match, the wheel checks what it packages."""
    binary = build_copy / "kexec"
    if damage == "truncated":
        with open(binary, "r+b") as stream:
            stream.truncate(33 * 1024)
    else:
        shutil.copyfile(static_program_that_is_not_kexec(), binary)
    info = json.loads((build_copy / "build-info.json").read_text())
    info["binary_sha256"] = sha256_of(binary)
    (build_copy / "build-info.json").write_text(json.dumps(info))
    dist = build_copy.parent / "dist"
    with pytest.raises(WheelError, match="the build backend failed to make the wheel"):
        wheels.make_wheels([recipe_set.native_target()], recipe_set.release(), recipe_set=recipe_set,
                          mirrors=[str(upstream_dir)], dist=dist, log=lambda line: None)
    output = capfd.readouterr()
    assert re.search(reason, output.out + output.err), output.out + output.err
    assert not list(dist.glob("*.whl"))
