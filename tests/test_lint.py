"""The code's habits, checked as CI checks them: ruff's lint and format, and mypy, all set up in pyproject.toml;
and vermin, for the oldest Python the package supports.

After a merge, `ruff format src tasks.py hatch_build.py tests` fixes the format; lint and type
findings are fixed by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kexec_build.paths import PROJECT_ROOT

PATHS = ("src", "tasks.py", "hatch_build.py", "tests")


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", *PATHS),
        ("ruff", "format", "--check", "--diff", *PATHS),
        ("mypy",),
        # What a pip install runs: the runtime, and the toolkit the sdist's build hook imports. ruff's
        # target-version does not catch a newer library call (str.removeprefix, functools.cache).
        ("vermin", "--no-tips", "--violations", "-t=3.8-", "src/kexec_bin", "src/kexec_build", "hatch_build.py"),
    ],
    ids=["ruff-check", "ruff-format", "mypy", "python-3.8"],
)
def test_the_code_is_clean(command):
    tool, *arguments = command
    # vermin has no `python -m` entry point: its script, beside this interpreter.
    program = [str(Path(sys.executable).with_name(tool))] if tool == "vermin" else [sys.executable, "-m", tool]
    result = subprocess.run([*program, *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
