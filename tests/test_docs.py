"""The docs say what the code does: generated pages current, every exit code and variable listed, man pages
that render, links that lead somewhere, a short README, and a map of every test file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kexec_bin import errors
from kexec_build import docs
from kexec_build.paths import PROJECT_ROOT

QUICKSTART = (
    "scripts/setup && .venv/bin/inv wheel",
    "scripts/setup --test && .venv/bin/python -m pytest -ra",
)
CODE_WITH_VARIABLES = ("src", "tasks.py", "hatch_build.py", "scripts")


def test_the_generated_docs_are_current():
    stale = [
        str(path)
        for path, text in docs.generated_files().items()
        if not (PROJECT_ROOT / path).exists() or (PROJECT_ROOT / path).read_text() != text
    ]
    assert stale == [], f"run `inv docs`: these differ from what the code gives: {stale}"


def test_every_generated_page_is_still_made():
    made = set(docs.generated_files())
    checked_in = {
        path.relative_to(PROJECT_ROOT)
        for folder, pattern in (("docs/reference", "*.md"), ("docs/man", "*.1"))
        for path in (PROJECT_ROOT / folder).glob(pattern)
    }
    assert checked_in - made == set(), "run `inv docs`: it removes the pages no command makes any more"


def test_every_option_of_every_command_is_in_the_reference():
    for command in docs.commands():
        page = (PROJECT_ROOT / "docs/reference" / f"{command.page}.md").read_text()
        missing = [option.flags for option in command.options if f"`{option.flags}`" not in page]
        assert missing == [], f"{command.program}: {missing}"


def test_every_command_has_a_guide():
    missing = [docs.guide(command) for command in docs.commands() if not (PROJECT_ROOT / docs.guide(command)).exists()]
    assert missing == [], "the man pages point to these guides"


def test_every_exit_code_is_documented():
    codes = {value for name, value in vars(errors).items() if name.startswith("EXIT_") and isinstance(value, int)}
    table = {int(code) for code, _ in docs.markdown_table(PROJECT_ROOT / "docs/exit-codes.md", "Exit codes")}
    assert codes - table == set(), "add these exit codes to docs/exit-codes.md, then run `inv docs`"


def test_the_readme_lists_the_same_exit_codes_as_the_docs():
    documented = {code for code, _ in docs.markdown_table(PROJECT_ROOT / "docs/exit-codes.md", "Exit codes")}
    assert {code for code, _ in docs.markdown_table(PROJECT_ROOT / "README.md", "Exit codes")} == documented


def test_every_variable_the_code_reads_is_documented():
    found: set[str] = set()
    for name in CODE_WITH_VARIABLES:
        top = PROJECT_ROOT / name
        for path in [top] if top.is_file() else top.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                found.update(re.findall(r"KEXEC_BIN_[A-Z][A-Z_]*[A-Z]", path.read_text(errors="replace")))
    documented = set(re.findall(r"`(KEXEC_BIN_[A-Z_]+)`", (PROJECT_ROOT / "docs/environment.md").read_text()))
    assert found - documented == set(), "add these to docs/environment.md"


@pytest.mark.skipif(shutil.which("man") is None, reason="needs man-db (scripts/setup --test installs it)")
@pytest.mark.parametrize("page", sorted(path.name for path in (PROJECT_ROOT / "docs/man").glob("*.1")))
def test_the_man_page_renders(page):
    result = subprocess.run(
        ["man", "--warnings", "-l", str(PROJECT_ROOT / "docs/man" / page)],
        capture_output=True,
        text=True,
        env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80", "LC_ALL": "C.UTF-8"},
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    name = page.removesuffix(".1")
    assert result.stdout.startswith(f"{name.upper()}(1)"), result.stdout[:200]
    for section in ("NAME", "SYNOPSIS", "EXIT STATUS", "SEE ALSO"):
        assert f"\n{section}\n" in result.stdout, section


def test_the_readme_is_a_front_door():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert readme.count("\n") <= 300, "README.md: 300 lines at most; move the detail into docs/"
    for command in QUICKSTART:
        assert f"\n    {command}\n" in readme, f"README.md must keep the quickstart command `{command}`"


def _markdown_files() -> list[Path]:
    return [
        PROJECT_ROOT / "README.md",
        PROJECT_ROOT / "tests/README.md",
        *sorted((PROJECT_ROOT / "docs").rglob("*.md")),
    ]


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_every_relative_link_leads_to_a_file(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        path = target.split("#", 1)[0]
        if not path or re.match(r"[a-z]+:", path):
            continue
        if not (page.parent / path).exists():
            broken.append(target)
    assert broken == []


def test_every_test_file_is_in_the_map_of_tests():
    listed = (PROJECT_ROOT / "tests/README.md").read_text()
    tests = PROJECT_ROOT / "tests"
    missing = [
        path.relative_to(tests).as_posix()
        for path in sorted(tests.rglob("test_*.py"))
        if f"`{path.relative_to(tests).as_posix()}`" not in listed
    ]
    assert missing == [], "add these to tests/README.md's map"


def test_the_index_links_every_page_of_the_docs():
    index = (PROJECT_ROOT / "docs/README.md").read_text()
    linked = set(re.findall(r"\]\(([^)#\s]+)", index))
    pages = {path.name for path in (PROJECT_ROOT / "docs").glob("*.md")}
    assert pages - {"README.md"} - linked == set(), "add these to docs/README.md"
