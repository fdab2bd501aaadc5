"""Arguments as an attacker or a careless caller writes them: file names that look like kexec options,
and kexec's own options read exactly as kexec-tools' getopt_long reads them."""

from __future__ import annotations

import re

import pytest

import kexec_bin
from kexec_bin.shim import LONG_OPTIONS, SHORT_OPTIONS, long_option, operation_of
from tests.runtime.installed import powerless, system_kexec

OPTION_LIKE_NAMES = (
    [f"-{letter}" for letter in sorted(SHORT_OPTIONS)]
    + [f"--{name}" for name in sorted(LONG_OPTIONS)]
    + [f"--{name}=x" for name, (_, takes_value) in sorted(LONG_OPTIONS.items()) if takes_value]
)


def test_the_option_tables_are_upstreams(kexec_tools_headers):
    """Every short letter and every CPU's long option of kexec-tools, each with whether it takes a value."""
    found = re.search(r'#define KEXEC_OPT_STR "([^"]*)"', kexec_tools_headers["kexec/kexec.h"])
    assert found, "kexec/kexec.h no longer defines KEXEC_OPT_STR"
    letters = found.group(1)
    upstream = {}
    for text in kexec_tools_headers.values():
        for name, has_arg in re.findall(r'\{\s*"([\w-]+)"\s*,\s*(\w+)', text):
            upstream[name] = has_arg != "0"
    assert len(kexec_tools_headers) > 10 and len(upstream) > 50
    assert {letter: takes for letter, (_, takes) in SHORT_OPTIONS.items()} == {
        letter: letters[index + 1 : index + 2] == ":" for index, letter in enumerate(letters) if letter != ":"
    }
    assert {name: takes for name, (_, takes) in LONG_OPTIONS.items()} == upstream


@pytest.fixture
def powerless_debian_kexec(debian_kexec, tmp_path, monkeypatch):
    """Debian's real kexec as the system kexec, without the capabilities to do anything."""
    folder = powerless(tmp_path / "sbin", debian_kexec.path, debian_kexec.library_path)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")


@pytest.mark.usefixtures("powerless_debian_kexec")
@pytest.mark.parametrize("name", OPTION_LIKE_NAMES)
def test_a_kernel_named_like_an_option_is_a_file_to_kexec(name, tree, tmp_path, monkeypatch):
    # Before: `kexec --load -e ...` made a file name "boot now" (and -h printed help and "succeeded").
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(b"not a kernel\n")
    with pytest.raises(kexec_bin.KexecError) as raised:
        kexec_bin.load(name, syscall="load", root=str(tree.root))
    assert f"Cannot determine the file type of {tmp_path / name}" in raised.value.output


def test_initrd_and_command_line_stay_values(tree, tmp_path, monkeypatch):
    record = tmp_path / "args"
    folder = system_kexec(tmp_path / "sbin", f'printf "%s\\n" "$@" > {record}\n')
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    kexec_bin.load("-p", initrd="-e", cmdline="-e --exec -- x", root=str(tree.root))
    assert record.read_text().splitlines() == [
        "--load",
        "--kexec-syscall-auto",
        "--initrd=-e",
        "--command-line=-e --exec -- x",
        "--",
        f"{tmp_path}/-p",
    ]


@pytest.mark.parametrize(
    "arguments",
    [
        {"kernel": ""},
        {"kernel": "vmlinuz\0-e"},
        {"kernel": 42},
        {"kernel": None},
        {"kernel": "k", "initrd": b"\0"},
        {"kernel": "k", "cmdline": b"quiet"},
        {"kernel": "k", "cmdline": "a\0b"},
        {"kernel": "k", "syscall": "kexec_load"},
        {"kernel": "k", "root": ""},
        {"kernel": "k", "root": "/no/such/root"},
        {"kernel": "k", "root": None},
        {"kernel": "k", "options": ["-e"]},  # only long options, each one operand
        {"kernel": "k", "options": ["--"]},
        {"kernel": "k", "options": "--real-mode"},
        {"kernel": "k", "options": ["--type", "bzImage"]},
    ],
)
def test_bad_api_arguments_are_usage_errors(arguments, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(system_kexec(tmp_path / "sbin", "exit 0\n")))
    with pytest.raises(kexec_bin.UsageError) as raised:
        kexec_bin.load(**arguments)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, kexec_bin.KexecBinError)


def test_loaded_with_a_missing_root_is_a_usage_error():
    with pytest.raises(kexec_bin.UsageError, match="not a folder"):
        kexec_bin.loaded("/no/such/root")


@pytest.mark.parametrize(
    ("args", "operation"),
    [
        # getopt_long takes any unique abbreviation of a long option.
        (["--stat"], None),
        (["--unl"], None),
        (["--vers"], None),
        (["--print-ckr"], None),
        (["--load-pa", "vmlinuz"], ("panic", "auto")),
        (["--kexec-file", "-l", "k"], ("load", "kexec_file_load")),
        (["--kexec-syscall-a", "-l", "k"], ("load", "auto")),
        (["--forc", "k"], ("load", "auto")),
        # Ambiguous (two of kexec's own options) or unknown: kexec prints its usage and does nothing.
        (["--lo", "k"], None),
        (["--ex"], None),
        (["--load-p", "k"], None),
        (["--no-such-option", "k"], None),
        (["-l", "-Z", "k"], None),
        (["--exec=now"], None),
        # The last action wins, as kexec-tools' own flags do; -u no longer hides a later load.
        (["-u", "-l", "k"], ("load", "auto")),
        (["-l", "k", "-u"], None),
        (["-e", "-u"], ("exec", "auto")),
        (["-p", "-l", "k"], ("panic", "auto")),
        (["-l", "k", "-S"], None),
        (["-Sl", "k"], None),
        # An option's value is never read as an option.
        (["-l", "k", "--append", "-u"], ("load", "auto")),
        (["-t", "-e", "k"], ("load", "auto")),
        (["-lt", "-u", "k"], ("load", "auto")),
        (["--type", "-v", "k"], ("load", "auto")),
        (["--comm", "-S", "-l", "k"], ("load", "auto")),
        (["-l", "k", "--initrd"], None),
    ],
)
def test_options_are_read_as_getopt_long_reads_them(args, operation):
    assert operation_of(args) == operation


def test_an_abbreviation_is_resolved_among_every_cpus_options():
    assert long_option("stat") == ("status", False)
    assert long_option("ser") == ("other", True)  # serial, serial-baud: both take a value
    assert long_option("") is None
