"""`kexec-bin`: `doctor` explains whether kexec can work here, `which` names the program `kexec` runs.

`main` runs every subcommand inside `errors.guarded`, the one place that turns exceptions into
messages and exit codes, so a new subcommand gets the same contract (see the README's "Security
model") without a line of its own. There are two kinds:

- COMMANDS (doctor, which): a `Command` with a few options, parsed by a few lines of our own:
  argparse and the `re`, `gettext`, `locale` and `shutil` it imports cost more than the doctor's
  every check (see `inv bench`).
- STORIES (reboot, netboot, iso): each lives in a module of its own with `add_arguments(parser)`
  (an argparse parser) and `run(args) -> int`; only the one being run is imported.
"""

from __future__ import annotations

import sys

from .errors import EXIT_BLOCKED, EXIT_OK, KexecBinError, UsageError, guarded

TYPE_CHECKING = False
if TYPE_CHECKING:
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

    __slots__ = ("options", "run", "summary")

    def __init__(self, run: Callable[[dict], int], summary: str, options: Sequence[Option] = ()) -> None:
        self.run, self.summary, self.options = run, summary, tuple(options)

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
        return "\n".join(lines)


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
    import argparse
    import importlib

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise _usage_error(self.format_usage().rstrip(), message)  # exit 64 through guarded, not argparse's 2

    module, summary = STORIES[name]
    parser = Parser(prog=f"kexec-bin {name}", description=summary)
    command = importlib.import_module(f"{__package__}.{module}")
    command.add_arguments(parser)
    return command.run(parser.parse_args(args))


def _usage() -> str:
    return f"usage: kexec-bin {{{','.join([*COMMANDS, *STORIES])}}} ..."


def _overview() -> str:
    lines = [_usage(), "", __doc__.split("\n", 1)[0], "", "commands:"]
    lines += [f"  {name:<8} {command.summary}" for name, command in COMMANDS.items()]
    lines += [f"  {name:<8} {summary}" for name, (_, summary) in STORIES.items()]
    return "\n".join(lines + ["", "`kexec-bin COMMAND --help` shows a command's options."])


def _usage_error(usage: str, message: str) -> UsageError:
    sys.stderr.write(usage + "\n")
    return UsageError(message)


def _doctor(options: dict) -> int:
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


# Story commands: name → (module in this package, one-line help).
STORIES: dict[str, tuple[str, str]] = {
    "reboot": ("stories.reboot", "boot the kernel this machine would boot next, skipping firmware and boot loader"),
    "netboot": ("netboot", "download the Debian installer, verify it along Debian's signed chain, and kexec into it"),
    "iso": ("stories.iso", "boot an ISO image: the kernel of one of its entries, or the whole image through memdisk"),
}

COMMANDS = {
    "doctor": Command(
        _doctor,
        "check whether this machine can load a kernel with kexec",
        (
            Option("--json", "print the report as JSON"),
            Option("--root", "read /proc, /sys and /boot under DIR (default: /)", metavar="DIR", default="/"),
        ),
    ),
    "which": Command(
        _which,
        "print the kexec program that `kexec` runs, and why",
        (Option("--json", "print path, source, reason and skipped programs as JSON"),),
    ),
}
