"""The code's habits, checked as CI checks them: ruff's lint and format, and mypy, all set up in pyproject.toml;
and vermin, for the oldest Python the package supports.

After a merge, `ruff format src tasks.py hatch_build.py tests` fixes the format; lint and type
findings are fixed by hand.
"""

from __future__ import annotations

import subprocess

import pytest

from kexec_build import lint
from kexec_build.paths import PROJECT_ROOT

# The code's linters; the workflows' (actionlint, zizmor) are in test_workflows.py.
CODE_LINTERS = ("ruff", "ruff format", "mypy", "vermin")


@pytest.mark.parametrize("name", CODE_LINTERS)
def test_the_code_is_clean(name):
    command = lint.commands()[name]
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{name} ({' '.join(command[1:])}):\n{result.stdout}{result.stderr}"
