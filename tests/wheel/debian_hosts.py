"""A Debian host of another CPU, small enough for a test: its C library and Python
(`kexec_build.testbed.debian_python`), run with `qemu-<arch>-static -L`."""

from __future__ import annotations

from pathlib import Path

import packaging
from packaging.tags import Tag, parse_tag

from kexec_build.commands import run
from kexec_build.recipes import Target
from kexec_build.testbed.debian_python import python_root


def run_python(target: Target, code: str, *args: object, env: dict[str, str] | None = None) -> str:
    """Run `code` in Debian's python3 for `target`'s CPU (isolated: `args` are its sys.argv[1:]); its output."""
    tree, python = python_root(target)
    return run(target.qemu, "-L", tree, tree / "usr" / "bin" / python, "-I", "-c", code, *args, env=env).stdout


def supported_tags(target: Target) -> set[Tag]:
    """The tags `packaging.tags.sys_tags()` yields on a Debian host of `target`'s CPU: what pip accepts there."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import packaging.tags; "
        "print(*packaging.tags.sys_tags(), sep='\\n')"
    )
    output = run_python(target, code, Path(packaging.__file__).parent.parent)
    return {tag for line in output.split() for tag in parse_tag(line)}
