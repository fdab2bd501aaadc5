"""`kexec-bin`: `doctor` explains whether kexec can work here, `which` names the program `kexec` runs.

The story commands (`reboot`, `netboot`, `iso`) each live in a module of their own with
`add_arguments(parser)` and `run(args) -> int`; only the one being run is imported.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .doctor import OK, SIGNED, support
from .errors import KexecBinError
from .resolve import binary, choose


# Story commands: name → (module in this package, one-line help).
STORIES: dict[str, tuple[str, str]] = {
    "netboot": ("netboot", "download the Debian installer, verify it along Debian's signed chain, and kexec into it"),
    "iso": ("iso", "boot an ISO image: the kernel of one of its entries, or the whole image through memdisk"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run `kexec-bin`; return the exit status."""
    parser = argparse.ArgumentParser(prog="kexec-bin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check whether this machine can load a kernel with kexec")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument("--root", default="/", help="read /proc, /sys and /boot under this folder (default: /)")
    which = commands.add_parser("which", help="print the kexec program that `kexec` runs, and why")
    which.add_argument("--json", action="store_true", help="print path, source and reason as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    asked = next((word for word in argv if not word.startswith("-")), None)
    for name, (module, summary) in STORIES.items():
        story = commands.add_parser(name, help=summary, description=summary)
        if name == asked:
            import importlib

            command = importlib.import_module(f"{__package__}.{module}")
            command.add_arguments(story)
            story.set_defaults(run=command.run)
    args = parser.parse_args(argv)
    try:
        if args.command in STORIES:
            return args.run(args)
        return _doctor(args.json, args.root) if args.command == "doctor" else _which(args.json)
    except KexecBinError as error:
        print(f"kexec-bin: {error}", file=sys.stderr)
        return error.exit_code


def _doctor(as_json: bool, root: str) -> int:
    report = support(root)
    print(report.to_json() if as_json else report.to_text())
    return 0 if report.verdict in (OK, SIGNED) else 1


def _which(as_json: bool) -> int:
    choice = choose()
    bundled = _bundled_or_reason()
    if as_json:
        print(json.dumps({"path": choice.path, "source": choice.source, "reason": choice.reason, "bundled": bundled}))
    else:
        print(f"{choice.path}\n  {choice.source}: {choice.reason}\n  bundled kexec: {bundled}")
    return 0


def _bundled_or_reason() -> str:
    try:
        return binary()
    except KexecBinError as error:
        return f"unavailable ({error})"
