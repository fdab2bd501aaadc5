"""One vocabulary for what kexec is asked to do, shared by the shim, the API and the doctor.

An operation is an action (load, panic, exec) and the syscall it may use (kexec_load,
kexec_file_load, or auto: kexec-tools tries kexec_file_load, then kexec_load). The doctor's
findings name the same words in `affects`. Plain strings, no imports: the shim loads this on
every run.
"""

LOAD, PANIC, EXEC = "load", "panic", "exec"
ACTIONS = (LOAD, PANIC, EXEC)

KEXEC_LOAD, KEXEC_FILE_LOAD, AUTO = "kexec_load", "kexec_file_load", "auto"
SYSCALLS = (KEXEC_LOAD, KEXEC_FILE_LOAD)

# kexec-tools' option for each syscall choice, and the API's short names for them (load(syscall=...)).
SYSCALL_OPTIONS = {AUTO: "--kexec-syscall-auto", KEXEC_FILE_LOAD: "--kexec-file-syscall", KEXEC_LOAD: "--kexec-syscall"}
API_SYSCALLS = {"auto": AUTO, "file": KEXEC_FILE_LOAD, "load": KEXEC_LOAD}


def chosen(syscall: str) -> tuple:
    """The syscalls kexec may use: both in auto mode (kexec_file_load, then kexec_load), else the one named."""
    return SYSCALLS if syscall == AUTO else (syscall,)


# Set to 1 (or yes, true), it skips the doctor's preflight before a load or exec: `kexec`, the API and
# the story commands alike (the kernel itself still refuses what it refuses).
NO_CHECK = "KEXEC_BIN_NO_CHECK"


def checks_skipped(environ: "dict | None" = None) -> bool:
    """Whether KEXEC_BIN_NO_CHECK asks to skip the preflight."""
    import os

    return (os.environ if environ is None else environ).get(NO_CHECK, "") in ("1", "yes", "true")
