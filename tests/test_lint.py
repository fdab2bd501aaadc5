"""The code's habits, checked as CI checks them: ruff's lint and format, and mypy, all set up in pyproject.toml.

After a merge, `ruff format src tasks.py hatch_build.py tests` fixes the format; lint and type
findings are fixed by hand.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from kexec_build.paths import PROJECT_ROOT

PATHS = ("src", "tasks.py", "hatch_build.py", "tests")


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", *PATHS), ("ruff", "format", "--check", "--diff", *PATHS), ("mypy",)],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_the_code_is_clean(command):
    result = subprocess.run([sys.executable, "-m", *command], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
