"""One error boundary: whatever the input or the output, `kexec`, `kexec-bin` and the API end in one line and
a documented exit code, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kexec_bin
from kexec_bin.errors import EXIT_INTERNAL, EXIT_IO, EXIT_USAGE, guarded
from tests.runtime.installed import SOURCE, install

ENV = {**os.environ, "PYTHONPATH": str(SOURCE.parent)}


def kexec_bin_command(*args, **options):
    return subprocess.run([sys.executable, "-m", "kexec_bin", *args], capture_output=True, env=ENV, **options)


def test_a_reader_that_went_away_is_not_a_traceback(tree):
    # `kexec-bin doctor | head -1`, made certain: the reading end is closed before the doctor writes.
    reader, writer = os.pipe()
    os.close(reader)
    result = subprocess.run(
        [sys.executable, "-m", "kexec_bin", "doctor", "--root", str(tree.root)],
        stdout=writer,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    os.close(writer)
    assert (result.returncode, result.stderr) == (EXIT_IO, b"")


def test_head_reads_one_line_of_the_doctor(tree):
    for _ in range(10):  # the race of a real pipeline: head may exit before or after the doctor writes
        result = subprocess.run(
            f"{sys.executable} -m kexec_bin doctor --root {tree.root} | head -1",
            shell=True,
            capture_output=True,
            env=ENV,
        )
        assert result.stdout.startswith(b"kexec-bin doctor: ") and result.stderr == b""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_an_io_error(tree):
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "kexec_bin", "doctor", "--json", "--root", str(tree.root)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
    assert result.returncode == EXIT_IO
    assert result.stderr == "kexec-bin: cannot write the output: No space left on device\n"


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_a_root_whose_name_is_not_utf8(tree, tmp_path, locale):
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/root-\xff"))
    tree.root.rename(odd)
    result = subprocess.run(
        [sys.executable, "-m", "kexec_bin", "doctor", "--json", "--root", odd],
        capture_output=True,
        env={**ENV, "LC_ALL": locale},
    )
    assert result.stderr == b""
    assert json.loads(result.stdout)["root"] == str(odd)


@pytest.mark.parametrize("args", [[], ["doctor", "--bogus"], ["nonsense"], ["which", "extra"]])
def test_usage_errors_are_exit_64(args):
    result = kexec_bin_command(*args, text=True)
    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("usage: kexec-bin") and "Traceback" not in result.stderr


def test_help_still_exits_0():
    result = kexec_bin_command("doctor", "--help", text=True)
    assert result.returncode == 0 and "--root" in result.stdout


def test_a_bug_is_one_line_and_exit_70(capsys):
    empty: dict[str, int] = {}
    assert guarded("kexec-bin", lambda: empty["missing"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.startswith("kexec-bin: internal error (KeyError: 'missing'); please report it") and err.count("\n") == 1


def test_the_shim_with_a_bad_prefer_and_no_stderr_is_still_quiet(tmp_path):
    wheel = install(tmp_path, Path("/bin/echo"))
    result = subprocess.run(
        f"{wheel.kexec} --version 2>&-",
        shell=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "KEXEC_BIN_PREFER": "nope"},
    )
    assert result.returncode == EXIT_USAGE and result.stderr == b""


def test_the_api_turns_a_vanished_program_into_a_kexec_error(tree, tmp_path, monkeypatch):
    # A system kexec that cannot start (its interpreter is missing): still a KexecBinError.
    folder = tmp_path / "sbin"
    folder.mkdir()
    (folder / "kexec").write_text("#!/no/such/interpreter\n")
    (folder / "kexec").chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    with pytest.raises(kexec_bin.KexecError, match=r"cannot run .*/sbin/kexec: No such file or directory"):
        kexec_bin.load("/boot/vmlinuz", root=str(tree.root))


def test_the_api_raises_a_bad_prefer_as_a_usage_error(tree, monkeypatch):
    monkeypatch.setenv("KEXEC_BIN_PREFER", "nope")
    with pytest.raises(kexec_bin.UsageError):
        kexec_bin.execute(root=str(tree.root))
