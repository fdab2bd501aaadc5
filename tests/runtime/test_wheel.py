"""End to end: this machine's wheel, built from the checkout, pip-installed into a fresh venv."""

from __future__ import annotations

import json
import subprocess

import pytest

from kexec_bin.doctor import support
from kexec_bin.resolve import Choice
from kexec_build.testbed.trial import fresh_venv, native_wheel
from tests.runtime.installed import without_host_kexec

# build: builds the native binary unless build/ already holds it.
pytestmark = [pytest.mark.build, without_host_kexec]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheel")
    return fresh_venv(folder / "venv", native_wheel(folder / "dist"))


def run(venv, program, *args):
    # The venv's own bin first, as after `source bin/activate`; no kexec-tools anywhere on this host.
    return subprocess.run(
        [str(venv.script(program)), *args],
        capture_output=True,
        text=True,
        env={"PATH": f"{venv.root / 'bin'}:/usr/bin:/bin"},
    )


def test_kexec_version_runs_the_bundled_binary(venv):
    result = run(venv, "kexec", "--version")
    assert (result.returncode, result.stdout) == (0, "kexec-tools 2.0.32\n")
    direct = subprocess.run([str(venv.bundled()), "--version"], capture_output=True, text=True)
    assert direct.stdout == result.stdout


@pytest.mark.parametrize("name", ["kexec", "kexec-bin"])
def test_the_scripts_are_lean(venv, name):
    # The shipped scripts, not entry-point wrappers: no `re` on the way to execv or to the doctor.
    text = venv.script(name).read_text()
    assert text.startswith(f"#!{venv.python}") and "import re" not in text


def test_which_says_bundled(venv):
    result = run(venv, "kexec-bin", "which", "--json")
    answer = json.loads(result.stdout)
    assert (answer["path"], answer["source"]) == (str(venv.bundled()), "bundled")
    assert "no kexec-tools on PATH" in answer["reason"]


def test_doctor_explains_this_machine(venv):
    text = run(venv, "kexec-bin", "doctor")
    report = json.loads(run(venv, "kexec-bin", "doctor", "--json").stdout)
    expected = support(choice=Choice(str(venv.bundled()), "bundled", "")).verdict
    assert report["verdict"] == expected
    assert text.returncode == (0 if expected in ("ok", "signed-only") else 1)
    assert "`kexec` runs the bundled kexec" in text.stdout
    assert {f["check"] for f in report["findings"]} >= {"program", "capability", "user namespace", "secure boot"}


def test_python_m_kexec_bin(venv):
    result = subprocess.run(
        [str(venv.python), "-m", "kexec_bin", "which"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert result.stdout.splitlines()[0] == str(venv.bundled())


def test_api_binary(venv):
    result = subprocess.run(
        [str(venv.python), "-c", "import kexec_bin; print(kexec_bin.binary())"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == str(venv.bundled())
