"""The fast loop's tripwire (tests/conftest.py) catches what it should, and only in the fast loop.

Each case runs a one-file pytest in a child process with the suite's conftest as a plugin: a test that
calls a compiler fails there, one that does not passes, and a selection holding a `build` test keeps the
real compilers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kexec_build import recipes
from kexec_build.paths import PROJECT_ROOT
from tests.conftest import tripwired

CALLS_GCC = """
import subprocess
{marker}
def test_calls_the_compiler():
    subprocess.run(["gcc", "--version"], capture_output=True)
"""


@pytest.fixture
def child_pytest(fast_loop_tripwires):
    """Runs one test file in a child pytest, with this run's tripwires (if any) off its PATH: the child
    sets up its own, and a compiler it is allowed to call must not trip this run's."""
    ours = str(fast_loop_tripwires.parent) if fast_loop_tripwires else None
    path = os.pathsep.join(entry for entry in os.environ["PATH"].split(os.pathsep) if entry != ours)

    def run(folder: Path, source: str, *options: str) -> subprocess.CompletedProcess:
        return _child_pytest(folder, source, path, *options)

    return run


def _child_pytest(folder: Path, source: str, path: str, *options: str) -> subprocess.CompletedProcess:
    (folder / "test_child.py").write_text(source)
    return subprocess.run(
        # A basetemp of its own: pytest would otherwise number one under /tmp/pytest-of-<user> and delete the
        # oldest there, which may be another session's, still running.
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", str(folder)]
        + ["--basetemp", str(folder / "basetemp"), *options],
        cwd=folder,
        env={**os.environ, "PATH": path, "PYTHONPATH": f"{PROJECT_ROOT / 'src'}{os.pathsep}{PROJECT_ROOT}"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def gcc_on_path():
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc on PATH to trip over it (scripts/setup installs it)")


@pytest.mark.usefixtures("gcc_on_path")
def test_a_fast_loop_test_that_calls_the_native_compiler_fails(tmp_path, child_pytest):
    result = child_pytest(tmp_path, CALLS_GCC.format(marker=""))
    assert result.returncode == 1, result.stdout
    assert "called a compiler or qemu-user" in result.stdout and "gcc --version" in result.stdout


@pytest.mark.usefixtures("gcc_on_path")
def test_a_selection_with_a_build_test_keeps_the_real_compiler(tmp_path, child_pytest):
    marked = CALLS_GCC.format(marker="import pytest\npytestmark = pytest.mark.build")
    result = child_pytest(tmp_path, marked)
    assert result.returncode == 0, result.stdout


@pytest.mark.usefixtures("gcc_on_path")
def test_under_two_workers_each_has_its_own_tripwires(tmp_path, child_pytest):
    # pytest -n 2 (the fast loop as documented): the session fixture runs in each worker process. `--dist each`
    # runs the test in both, so both must catch the call, each with the tripwires in its own basetemp.
    result = child_pytest(tmp_path, CALLS_GCC.format(marker=""), "-n", "2", "--dist", "each")
    assert result.returncode == 1, result.stdout
    for worker in ("gw0", "gw1"):
        assert f"popen-{worker}/tripwires0/gcc --version" in result.stdout, result.stdout
    assert "called a compiler or qemu-user" in result.stdout


def test_a_fast_loop_test_that_calls_nothing_passes(tmp_path, child_pytest):
    result = child_pytest(tmp_path, "def test_nothing():\n    pass\n")
    assert result.returncode == 0, result.stdout


def test_the_tripwire_names_every_compiler_and_emulator_but_nothing_else():
    recipe_set = recipes.load()
    native = recipe_set.native_target().triplet
    cross = {target.triplet for target in recipe_set.targets.values() if target.triplet != native}
    caught = ["gcc", "cc", "gcc-12", "c++", "g++-12", "clang", f"{native}-gcc", f"{native}-gcc-12"]
    caught += [f"{triplet}-{tool}" for triplet in cross for tool in ("gcc", "ld", "strip")]
    caught += ["qemu-aarch64-static", "qemu-s390x-static"]
    passed = ["python3", "gpgv", "ar", "qemu-system-x86_64", "gcc-ar", f"{native}-strip", "ccache-swig", "make"]
    assert [name for name in caught if not tripwired(name, native, cross)] == []
    assert [name for name in passed if tripwired(name, native, cross)] == []
