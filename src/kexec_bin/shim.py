"""The `kexec` command: choose the program, check the kernel before a load, then become it.

`os.execv` replaces this process, so the arguments reach kexec verbatim and its exit status and
signals are the caller's to see. Only a load or an exec is checked; the check's modules are
imported only then, which keeps `kexec --version` close to bare interpreter start-up.
"""

from __future__ import annotations

import os
import sys

from .errors import KexecBinError

NO_CHECK = "KEXEC_BIN_NO_CHECK"
# Options after which kexec neither loads nor boots: never blocked, never checked.
_INFO = {"-h", "--help", "-v", "--version", "-S", "--status", "-u", "--unload", "--print-ckr-size"}
# The last action option wins, as in kexec-tools' own parsing. -f loads, then boots at once: a load
# needs everything a boot does, so it is checked as a load.
_ACTIONS = {
    "-l": "load", "--load": "load", "--load-preserve-context": "load", "--load-jump-back-helper": "load",
    "-f": "load", "--force": "load",
    "-p": "panic", "--load-panic": "panic",
    "-e": "exec", "--exec": "exec",
}
_SYSCALLS = {
    "-s": "kexec_file_load", "--kexec-file-syscall": "kexec_file_load",
    "-c": "kexec_load", "--kexec-syscall": "kexec_load",
    "-a": "auto", "--kexec-syscall-auto": "auto",
}
# Short options that take a value: the rest of a cluster after them is that value, not options.
_VALUE_LETTERS = set("t")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen kexec with `argv` (default: this process's arguments); return only on failure."""
    args = sys.argv[1:] if argv is None else argv
    try:
        from .resolve import choose

        choice = choose()
        operation = operation_of(args)
        if operation and os.environ.get(NO_CHECK, "") not in ("1", "yes", "true"):
            from .doctor import preflight

            preflight(operation, choice)
    except KexecBinError as error:
        sys.stderr.write(f"kexec: {error}\n")
        return error.exit_code
    try:
        os.execv(choice.path, [choice.path, *args])
    except OSError as error:
        sys.stderr.write(f"kexec: cannot run {choice.path}: {error.strerror} ({choice.reason})\n")
        return 126
    return 0  # not reached: execv does not return


def operation_of(args: list[str]) -> tuple[str, str] | None:
    """What kexec would do with `args`: (action, syscall), or None when it neither loads nor boots.

    action is "load", "panic" or "exec"; syscall is "auto", "kexec_file_load" or "kexec_load".
    Without an action option kexec loads (and then shuts down), so any other invocation is a load.
    """
    if not args:
        return None
    action, syscall = "load", "auto"
    for arg in args:
        if arg == "--":
            break
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            words = [name]
        elif arg.startswith("-") and len(arg) > 1:
            words = []
            for letter in arg[1:]:
                words.append("-" + letter)
                if letter in _VALUE_LETTERS:
                    break
        else:
            continue
        for word in words:
            if word in _INFO:
                return None
            action = _ACTIONS.get(word, action)
            syscall = _SYSCALLS.get(word, syscall)
    return action, syscall
