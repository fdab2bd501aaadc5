"""The fast loop (`-m "not cross and not vm and not build"`) runs no cross tool: each marker means what it says.

The loop runs again in a child pytest whose PATH holds every program of this one except the cross
toolchains' and qemu-user's: in their place stand tripwires that record their call and fail.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from kexec_build import recipes
from kexec_build.commands import run
from kexec_build.paths import PROJECT_ROOT

FAST_LOOP = "not cross and not vm and not build"
# Set in the child run, so that this test does not run itself again there.
INNER_RUN = "KEXEC_BIN_FAST_LOOP_PROBE"


def is_cross_tool(name: str, triplets: set[str]) -> bool:
    """A cross target's compiler or binutils program, or a qemu-user emulator."""
    return name.startswith(tuple(f"{triplet}-" for triplet in triplets)) or (
        name.startswith("qemu-") and name.endswith("-static")
    )


def path_without_cross_tools(folder: Path, record: Path) -> tuple[str, list[str]]:
    """A one-folder PATH mirroring this one, cross tools replaced by tripwires; and the names replaced."""
    recipe_set = recipes.load()
    native = recipe_set.native_target()
    triplets = {target.triplet for target in recipe_set.targets.values() if target != native}
    folder.mkdir()
    hidden = []
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in sorted(os.scandir(directory), key=lambda entry: entry.name):
            mirrored = folder / entry.name
            if mirrored.exists() or mirrored.is_symlink():
                continue  # an earlier PATH folder's program wins, as in the real PATH
            if is_cross_tool(entry.name, triplets):
                mirrored.write_text(f'#!/bin/sh\necho "$0 $*" >> {record}\nexit 127\n')
                mirrored.chmod(0o755)
                hidden.append(entry.name)
            else:
                mirrored.symlink_to(entry.path)
    return str(folder), hidden


@pytest.mark.skipif(os.environ.get(INNER_RUN) == "1", reason="the child run of the fast loop does not probe itself")
def test_the_fast_loop_calls_no_cross_compiler(tmp_path):
    record = tmp_path / "called"
    path, hidden = path_without_cross_tools(tmp_path / "bin", record)
    if not hidden:  # nothing to hide, nothing proven
        pytest.skip(
            "needs the cross compilers and qemu-user on PATH to hide them: `scripts/setup --test` installs them"
        )
    env = {**os.environ, "PATH": path, INNER_RUN: "1"}
    result = run(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--basetemp",
        tmp_path / "inner",
        "-m",
        FAST_LOOP,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=600,
    )
    assert " passed" in result.stdout.splitlines()[-1], result.stdout
    assert not record.exists(), f"the fast loop called a cross tool: {record.read_text()}"
