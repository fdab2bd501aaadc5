"""`kexec-bin`: `doctor` explains whether kexec can work here, `which` names the program `kexec` runs.

Each subcommand is a function of its parsed arguments that returns the exit status; `main` runs it
inside `errors.guarded`, the one place that turns exceptions into messages and exit codes, so a
new subcommand gets the same contract (see the README's "Security model") without a line of its own.
"""

from __future__ import annotations

import argparse
import sys

from .errors import EXIT_BLOCKED, EXIT_OK, KexecBinError, UsageError, guarded

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a UsageError (exit 64, one line) rather than exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `kexec-bin`; return the exit status."""
    return guarded("kexec-bin", lambda: _dispatch(argv))


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = _Parser(prog="kexec-bin", description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check whether this machine can load a kernel with kexec")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument("--root", default="/", help="read /proc, /sys and /boot under this folder (default: /)")
    doctor.set_defaults(run=_doctor)
    which = commands.add_parser("which", help="print the kexec program that `kexec` runs, and why")
    which.add_argument("--json", action="store_true", help="print path, source, reason and skipped programs as JSON")
    which.set_defaults(run=_which)
    args = parser.parse_args(argv)
    return args.run(args)


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import OK, SIGNED, support

    report = support(args.root)
    print(report.to_json() if args.json else report.to_text())
    return EXIT_OK if report.verdict in (OK, SIGNED) else EXIT_BLOCKED


def _which(args: argparse.Namespace) -> int:
    from .resolve import binary, choose

    choice = choose(verify=True)
    try:
        bundled = binary()
    except KexecBinError as error:
        bundled = f"unavailable ({error})"
    if args.json:
        import json

        skipped = [{"path": path, "reason": reason} for path, reason in choice.skipped]
        print(json.dumps({"path": choice.path, "source": choice.source, "reason": choice.reason,
                          "bundled": bundled, "skipped": skipped}))
    else:
        lines = [choice.path, f"  {choice.source}: {choice.reason}", f"  bundled kexec: {bundled}"]
        lines += [f"  skipped {path}: {reason}" for path, reason in choice.skipped]
        print("\n".join(lines))
    return EXIT_OK
