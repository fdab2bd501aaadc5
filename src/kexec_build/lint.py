"""`inv lint`: ruff and mypy on the code (as tests/test_lint.py runs them), actionlint and zizmor on the GitHub
workflows; all installed from PyPI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .errors import BuildError
from .paths import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
# What ruff reads; mypy takes its files from pyproject.toml.
CODE = ("src", "tasks.py", "hatch_build.py", "tests")


def tool(name: str) -> Path:
    """A linter installed in this venv (scripts/setup installs them)."""
    return Path(sys.executable).parent / name


def commands() -> dict[str, list[str]]:
    """Each linter's command, run in the project folder."""
    workflows = sorted(str(path.relative_to(PROJECT_ROOT)) for path in WORKFLOWS.glob("*.yml"))
    return {
        "ruff": [str(tool("ruff")), "check", *CODE],
        "ruff format": [str(tool("ruff")), "format", "--check", *CODE],
        "mypy": [str(tool("mypy"))],
        "actionlint": [str(tool("actionlint")), *workflows],
        # --offline: no GitHub API calls (the online audits need a token); the findings are the same rules.
        "zizmor": [str(tool("zizmor")), "--offline", *workflows],
    }


def missing_tools() -> dict[str, str]:
    """Linters that are not installed, with the command that installs them."""
    return {
        name: "scripts/setup --lint" if name == "actionlint" else "scripts/setup"
        for name, command in commands().items()
        if not Path(command[0]).exists()
    }


def lint(log=print) -> None:
    """Run every linter; raise `BuildError` naming each one that found something (or is missing)."""
    problems = [f"{name} is not installed: run `{fix}`" for name, fix in missing_tools().items()]
    for name, command in commands().items():
        if name in missing_tools():
            continue
        result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
        log(f"lint: {name}: {'ok' if result.returncode == 0 else 'FAILED'}")
        if result.returncode:
            problems.append(f"{name} ({' '.join(command[1:])}):\n{result.stdout}{result.stderr}".rstrip())
    if problems:
        raise BuildError("\n".join(problems))
