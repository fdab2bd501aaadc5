"""The `kexec` command: choose the program, check the kernel before a load, then become it.

`os.execv` replaces this process, so the arguments reach kexec verbatim and its exit status and
signals are the caller's to see. Only a load, panic load or exec is checked (and only then is the
bundled binary hashed); the check's modules are imported only then, which keeps `kexec --version`
close to bare interpreter start-up.
"""

import os
import sys

from . import ops
from .errors import EXIT_CANNOT_EXECUTE, complain, guarded

# What an option makes kexec-tools do (kexec/kexec.c, main()), read as its getopt_long reads them.
_INFO, _STATUS, _OTHER = "info", "status", "other"  # info: prints and returns; status: -S cancels any action
_FORCE, _UNLOAD, _JUMP = "force", "unload", "jump-back"
# kexec/kexec.h KEXEC_OPTIONS and KEXEC_OPT_STR: in every build of kexec-tools, for every CPU.
# Each: (effect, takes a value).
_GENERIC = {
    "help": (_INFO, False),
    "version": (_INFO, False),
    "print-ckr-size": (_INFO, False),
    "status": (_STATUS, False),
    "force": (_FORCE, False),
    "load": (ops.LOAD, False),
    "load-panic": (ops.PANIC, False),
    "load-preserve-context": (ops.LOAD, False),
    "load-live-update": (ops.LOAD, False),
    "exec": (ops.EXEC, False),
    "exec-live-update": (ops.EXEC, False),
    "load-jump-back-helper": (_JUMP, False),
    "unload": (_UNLOAD, False),
    "kexec-file-syscall": (ops.KEXEC_FILE_LOAD, False),
    "kexec-syscall": (ops.KEXEC_LOAD, False),
    "kexec-syscall-auto": (ops.AUTO, False),
    "no-checks": (_OTHER, False),
    "no-ifdown": (_OTHER, False),
    "no-sync": (_OTHER, False),
    "debug": (_OTHER, False),
    "reuseinitrd": (_OTHER, False),
    "hotplug": (_OTHER, False),
    "entry": (_OTHER, True),
    "type": (_OTHER, True),
    "mem-min": (_OTHER, True),
    "mem-max": (_OTHER, True),
}
SHORT_OPTIONS = {
    "h": _GENERIC["help"],
    "?": (_INFO, False),
    "v": _GENERIC["version"],
    "S": _GENERIC["status"],
    "f": _GENERIC["force"],
    "l": _GENERIC["load"],
    "p": _GENERIC["load-panic"],
    "e": _GENERIC["exec"],
    "u": _GENERIC["unload"],
    "s": _GENERIC["kexec-file-syscall"],
    "c": _GENERIC["kexec-syscall"],
    "a": _GENERIC["kexec-syscall-auto"],
    "d": _GENERIC["debug"],
    "i": _GENERIC["no-checks"],
    "x": _GENERIC["no-ifdown"],
    "y": _GENERIC["no-sync"],
    "t": _GENERIC["type"],
}
# The options of each CPU's kexec-tools and its kernel loaders (kexec/arch/*/include/arch/options.h,
# KEXEC_ALL_OPTIONS): they do not change the operation, but they make an abbreviation ambiguous.
_ARCH_VALUES = (
    "append",
    "bootinfo",
    "command-line",
    "devicetreeblob",
    "dtb",
    "empty-zero",
    "gamecube",
    "howto",
    "image-size",
    "initrd",
    "miniroot",
    "module",
    "page-offset",
    "ramdisk",
    "reuse-node",
    "serial",
    "serial-baud",
    "vmm",
)
_ARCH_FLAGS = (
    "args-elf",
    "args-linux",
    "args-none",
    "atags",
    "console-serial",
    "console-vga",
    "dt-no-old-root",
    "elf32-core-headers",
    "elf64-core-headers",
    "entry-32bit",
    "noefi",
    "noio",
    "pass-memmap-cmdline",
    "real-mode",
    "reset-vga",
    "reuse-cmdline",
    "reuse-video-type",
)
LONG_OPTIONS = {
    **dict.fromkeys(_ARCH_VALUES, (_OTHER, True)),
    **dict.fromkeys(_ARCH_FLAGS, (_OTHER, False)),
    **_GENERIC,
}


def main(argv: "list | None" = None) -> int:
    """Run the chosen kexec with `argv` (default: this process's arguments); return only on failure."""
    args = sys.argv[1:] if argv is None else argv
    return guarded("kexec", lambda: _become_kexec(args))


def _become_kexec(args: list) -> int:
    from .resolve import child_environment, choose

    operation, kernel = _parsed(args)
    choice = choose(verify=operation is not None)
    if operation and not ops.checks_skipped():
        from .doctor import SIGNED, preflight

        checked = preflight(operation, choice)
        if kernel and checked.state(*operation) == SIGNED:  # only a kernel with a trusted signature loads here
            from .trust import check_kernel

            check_kernel(kernel, support=checked)
    try:
        os.execve(choice.path, [choice.path, *args], child_environment(choice))
    except OSError as error:
        return complain("kexec", f"cannot run {choice.path}: {error.strerror} ({choice.reason})", EXIT_CANNOT_EXECUTE)
    return 0  # not reached: execve does not return


def operation_of(args: list) -> "tuple | None":
    """What kexec would do with `args`: (action, syscall), or None when it neither loads nor boots."""
    return _parsed(args)[0]


def kernel_of(args: list) -> "str | None":
    """The kernel file kexec would load with `args` (its first argument that is no option nor a value)."""
    return _parsed(args)[1]


def _parsed(args: list) -> tuple:
    """(operation, kernel file) of `args`: see `operation_of` and `kernel_of`.

    action is ops.LOAD, ops.PANIC or ops.EXEC; syscall is ops.AUTO, ops.KEXEC_FILE_LOAD or
    ops.KEXEC_LOAD. Options are read as kexec-tools' getopt_long reads them: in order, with the
    values of options that take one, unique abbreviations of long options, up to `--`. An option
    kexec does not know (or an ambiguous one) makes it print its usage and do nothing: None.
    Without an action option kexec loads (and then shuts down), so any other invocation is a load.
    """
    if not args:
        return None, None
    load, boot, panic, syscall, kernel = True, False, False, ops.AUTO, None
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            kernel = kernel or (args[index] if index < len(args) else None)
            break
        if arg.startswith("--"):
            name, equals, _ = arg[2:].partition("=")
            option = long_option(name)
            if option is None or (equals and not option[1]):
                return None, None
            options = [option]
            if option[1] and not equals:
                index += 1  # the value is the next argument, whatever it looks like
        elif arg.startswith("-") and arg != "-":
            options = []
            for position, letter in enumerate(arg[1:], start=2):
                if letter not in SHORT_OPTIONS:
                    return None, None
                options.append(SHORT_OPTIONS[letter])
                if SHORT_OPTIONS[letter][1]:  # -tTYPE, or -t TYPE
                    index += position == len(arg)
                    break
        else:
            kernel = kernel or arg  # the kernel file
            continue
        if index > len(args):
            return None, None  # an option's value is missing: kexec prints its usage
        for effect, _ in options:
            if effect in (_INFO, _STATUS):
                return None, None
            if effect in ops.SYSCALLS or effect == ops.AUTO:
                syscall = effect
            elif effect in (ops.LOAD, ops.PANIC, _FORCE):
                load, boot, panic = True, effect == _FORCE, panic or effect == ops.PANIC
            elif effect in (ops.EXEC, _UNLOAD, _JUMP):
                load, boot = False, boot if effect == _UNLOAD else True
    if load:  # -f loads, then boots at once: a load needs everything a boot does, so it is checked as one
        return ((ops.PANIC if panic else ops.LOAD), syscall), kernel
    return ((ops.EXEC, syscall) if boot else None), None


def long_option(name: str) -> "tuple | None":
    """(effect, takes a value) of `--name` as getopt_long reads it: exact, or a unique abbreviation.

    Abbreviations are matched against every CPU's option names. One that fits two of kexec's
    generic options is ambiguous in every build (None: kexec prints its usage); one generic option
    among arch-only ones is that option (or ambiguous, on a CPU that has those).
    """
    if name in LONG_OPTIONS:
        return LONG_OPTIONS[name]
    if not name:
        return None
    generic = [full for full in _GENERIC if full.startswith(name)]
    if generic:
        return _GENERIC[generic[0]] if len(generic) == 1 else None
    matches = {LONG_OPTIONS[full] for full in LONG_OPTIONS if full.startswith(name)}
    if not matches:
        return None
    return _OTHER, all(takes for _, takes in matches)
