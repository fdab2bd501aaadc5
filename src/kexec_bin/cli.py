"""`kexec-bin`: whether kexec can work here (`doctor`) and which program `kexec` runs (`which`); `reboot`, `netboot`
and `iso` boot a kernel from /boot, a Debian mirror or an ISO image.

`main` runs every subcommand inside `errors.guarded`, the one place that turns exceptions into
messages and exit codes, so a new subcommand gets the same contract (docs/exit-codes.md) without a line of
its own. There are two kinds:

- COMMANDS (doctor, which): a `Command` with a few options, parsed by a few lines of our own:
  argparse and the `re`, `gettext`, `locale` and `shutil` it imports cost more than the doctor's
  every check (see `inv bench`).
- STORIES (reboot, netboot, iso): each lives in a module of its own with `add_arguments(parser)`
  (an argparse parser) and `run(args) -> int`; only the one being run is imported, and
  `plan.boot.run_story` runs it, after the refusals every story shares (--root with a load, a
  kernel that refuses kexec before anything is downloaded).
"""

from __future__ import annotations

import sys

from .errors import EXIT_BLOCKED, EXIT_OK, KexecBinError, UsageError, guarded

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from types import ModuleType
    from typing import Callable, Sequence


class Option:
    """`--name` alone (a flag: True when given), or `--name VALUE` / `--name=VALUE` when `metavar` is set."""

    __slots__ = ("default", "help", "metavar", "name")

    def __init__(self, name: str, help: str, *, metavar: str = "", default: object = None) -> None:
        self.name, self.metavar, self.help = name, metavar, help
        self.default = default if metavar else False

    @property
    def key(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


class Command:
    """A subcommand: `run(options)` returns the exit status; `options` maps each Option's key to its value."""

    __slots__ = ("examples", "options", "run", "summary")

    def __init__(
        self, run: Callable[[dict], int], summary: str, options: Sequence[Option] = (), examples: str = ""
    ) -> None:
        self.run, self.summary, self.options, self.examples = run, summary, tuple(options), examples

    def usage(self, name: str) -> str:
        shown = " ".join(f"[{o.name} {o.metavar}]" if o.metavar else f"[{o.name}]" for o in self.options)
        return f"usage: kexec-bin {name} {shown}".rstrip()

    def parse(self, name: str, args: Sequence[str]) -> dict | None:
        """The options' values; None when -h/--help asks for the help instead."""
        by_name = {option.name: option for option in self.options}
        values = {option.key: option.default for option in self.options}
        index = 0
        while index < len(args):
            word, equals, value = args[index].partition("=")
            index += 1
            if word in ("-h", "--help") and not equals:
                return None
            option = by_name.get(word)
            if option is None:
                raise _usage_error(self.usage(name), f"unrecognised argument {args[index - 1]!r}")
            if not option.metavar:
                if equals:
                    raise _usage_error(self.usage(name), f"{word} takes no value")
                values[option.key] = True
                continue
            if not equals:
                if index == len(args):
                    raise _usage_error(self.usage(name), f"{word} needs a value: {word} {option.metavar}")
                value, index = args[index], index + 1
            values[option.key] = value
        return values

    def help(self, name: str) -> str:
        lines = [self.usage(name), "", self.summary, "", "options:"]
        lines += [f"  {(o.name + ' ' + o.metavar).strip():<14} {o.help}" for o in self.options]
        return "\n".join(lines + (["", self.examples] if self.examples else []))


def main(argv: Sequence[str] | None = None) -> int:
    """Run `kexec-bin`; return the exit status."""
    return guarded("kexec-bin", lambda: _dispatch(sys.argv[1:] if argv is None else list(argv)))


def _dispatch(args: list) -> int:
    names = [*COMMANDS, *STORIES]
    if args and args[0] in STORIES:
        return _story(args[0], args[1:])
    if not args or args[0] not in COMMANDS:
        if args and args[0] in ("-h", "--help"):
            print(_overview())
            return EXIT_OK
        if args == ["--version"]:
            print(_version())
            return EXIT_OK
        raise _usage_error(
            _usage(),
            f"choose a command: {', '.join(names)}"
            if not args
            else f"unknown command {args[0]!r} (choose from {', '.join(names)})",
        )
    name, rest = args[0], args[1:]
    command = COMMANDS[name]
    options = command.parse(name, rest)
    if options is None:
        print(command.help(name))
        return EXIT_OK
    return command.run(options)


def _story(name: str, args: list) -> int:
    parser, command = story_parser(name)
    from .plan.boot import run_story

    return run_story(command.run, parser.parse_args(args))


def story_parser(name: str) -> tuple[argparse.ArgumentParser, ModuleType]:
    """Story command `name`'s parser and module (imported only now): what it runs with, and what the
    reference and man pages are generated from (`inv docs`)."""
    import argparse
    import importlib

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise _usage_error(self.format_usage().rstrip(), message)  # exit 64 through guarded, not argparse's 2

    def formatter(prog: str) -> argparse.HelpFormatter:
        # The width argparse would take from shutil, which imports shutil (and lzma, bz2) on every run.
        import os

        stdout = sys.__stdout__
        try:
            columns = int(os.environ.get("COLUMNS", "") or os.get_terminal_size(stdout.fileno() if stdout else 1)[0])
        except (OSError, ValueError):  # not a terminal
            columns = 80
        return argparse.RawDescriptionHelpFormatter(prog, width=columns - 2)  # raw: the examples epilog keeps its lines

    module, summary = STORIES[name]
    parser = Parser(prog=f"kexec-bin {name}", description=summary, formatter_class=formatter)
    command = importlib.import_module(f"{__package__}.{module}")
    command.add_arguments(parser)
    return parser, command


def _version() -> str:
    """This kexec-bin's version, and the kexec-tools bundled with it (a source checkout has neither)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        own = version("kexec-bin")
    except PackageNotFoundError:
        own = "(version unknown: no package metadata, as in a source checkout)"
    try:
        from . import _build_info as info
    except ImportError:
        return f"kexec-bin {own}"
    return f"kexec-bin {own} (bundled kexec-tools {info.KEXEC_TOOLS_VERSION} for {info.TARGET})"


def _usage() -> str:
    return f"usage: kexec-bin {{{','.join([*COMMANDS, *STORIES])}}} ..."


def _overview() -> str:
    lines = [_usage(), "", __doc__.split("\n\n", 1)[0].replace("\n", " "), "", "commands:"]
    lines += [f"  {name:<8} {command.summary}" for name, command in COMMANDS.items()]
    lines += [f"  {name:<8} {summary}" for name, (_, summary) in STORIES.items()]
    lines += ["", "`kexec-bin COMMAND --help` shows a command's options and examples; --version, the versions."]
    return "\n".join([*lines, "", EXAMPLES])


def _usage_error(usage: str, message: str) -> UsageError:
    sys.stderr.write(usage + "\n")
    return UsageError(message)


def _doctor(options: dict) -> int:
    if options["kernel"] is not None:
        from .trust import predict

        prediction = predict(options["kernel"], options["root"])
        print(prediction.to_json() if options["json"] else prediction.to_text())
        return EXIT_OK if prediction.accepted else EXIT_BLOCKED
    from .doctor import OK, SIGNED, support

    report = support(options["root"])
    print(report.to_json() if options["json"] else report.to_text())
    return EXIT_OK if report.verdict in (OK, SIGNED) else EXIT_BLOCKED


def _which(options: dict) -> int:
    from .resolve import binary, choose

    choice = choose(verify=True)
    try:
        bundled = binary()
    except KexecBinError as error:
        bundled = f"unavailable ({error})"
    if options["json"]:
        import json

        skipped = [{"path": path, "reason": reason} for path, reason in choice.skipped]
        print(
            json.dumps(
                {
                    "path": choice.path,
                    "source": choice.source,
                    "reason": choice.reason,
                    "bundled": bundled,
                    "skipped": skipped,
                }
            )
        )
    else:
        lines = [choice.path, f"  {choice.source}: {choice.reason}", f"  bundled kexec: {bundled}"]
        lines += [f"  skipped {path}: {reason}" for path, reason in choice.skipped]
        print("\n".join(lines))
    return EXIT_OK


EXAMPLES = """examples:
  kexec-bin doctor                      can this machine kexec, and if not, why and the fix
  kexec-bin reboot --yes                reboot into the kernel the boot loader would boot next
  kexec-bin netboot debian --dry-run    the verified plan to boot Debian's installer
  kexec-bin iso image.iso --list        the Linux entries of an ISO image"""

# Story commands: name → (module in this package, one-line help).
STORIES: dict[str, tuple[str, str]] = {
    "reboot": ("stories.reboot", "boot the kernel this machine would boot next, skipping firmware and boot loader"),
    "netboot": (
        "stories.netboot",
        "download the Debian installer, verify it along Debian's signed chain, and kexec into it",
    ),
    "iso": ("stories.iso", "boot an ISO image: the kernel of one of its entries, or the whole image through memdisk"),
}

COMMANDS = {
    "doctor": Command(
        _doctor,
        "check whether this machine can load a kernel with kexec",
        (
            Option("--json", "print the report as JSON"),
            Option("--root", "read /proc, /sys and /boot under DIR (default: /)", metavar="DIR", default="/"),
            Option(
                "--kernel",
                "whether the kernel would accept FILE for kexec (its signature, the keys it trusts)",
                metavar="FILE",
            ),
        ),
        examples="""examples:
  kexec-bin doctor                 each check, the file it read, its verdict and the fix
  kexec-bin doctor --json          the same report for a script (exit 0: a load can work)
  kexec-bin doctor --root /mnt     judge the system mounted at /mnt by its /proc, /sys and /boot""",
    ),
    "which": Command(
        _which,
        "print the kexec program that `kexec` runs, and why",
        (Option("--json", "print path, source, reason and skipped programs as JSON"),),
        examples="""examples:
  kexec-bin which                              the program, why, and each kexec skipped with the reason
  KEXEC_BIN_PREFER=bundled kexec-bin which     what `kexec` runs when told to prefer the bundled one""",
    ),
}
