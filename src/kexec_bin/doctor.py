"""Checks → evidence → verdict → fix: can this machine load (and boot) a kernel with kexec?

Each check reads what the kernel publishes (kernel.py) and returns findings (findings.py). The
same checks are the `kexec` shim's preflight and the API's explanation of a failure.
"""

from __future__ import annotations

from . import ops
from .errors import BlockedError, KexecBinError
from .findings import BLOCKED, INFO, OK, SIGNED, UNKNOWN, Finding, Support, check_operation, explain
from .kernel import Kernel, Reading
from .resolve import Choice, choose

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the preflight of every `kexec --load` a few milliseconds
    from typing import Iterable

__all__ = ["BLOCKED", "INFO", "OK", "SIGNED", "UNKNOWN", "Finding", "Support", "explain", "preflight", "support"]

# A finding's `affects` names the syscalls it blocks, ops.EXEC (kexec -e) and ops.PANIC (kexec -p).
EVERYTHING = (*ops.SYSCALLS, ops.EXEC)


def support(root: str = "/", choice: Choice | None = None, *, way_back: bool = True) -> Support:
    """Run every check against the kernel under `root`; `choice` defaults to what `kexec` would run.

    `way_back` False leaves out the informational findings on what brings the machine back (panic,
    one-shot entry, deadline, watchdog): no decision reads them, and the preflight before every load
    need not read their files."""
    kernel = Kernel(root)
    config = _trusted_config(kernel)
    program, program_finding = _program(choice)
    findings: list[Finding] = [program_finding]
    for check in _CHECKS:
        if way_back or check is not _way_back:
            findings += check(kernel, config, program)
    return Support(
        root=root,
        program=program.path if program else None,
        program_source=program.source if program else None,
        findings=tuple(findings),
    )


def preflight(operation: tuple, choice: Choice | None, root: str = "/") -> Support:
    """Raise `BlockedError` when the kernel certainly refuses `operation` (action, syscall).

    `choice` None: the program `kexec` would run (a missing one is itself a finding).
    """
    action, syscall = operation
    check_operation(action, syscall)
    result = support(root, choice, way_back=False)
    if result.state(action, syscall) == BLOCKED:
        raise BlockedError(explain(result, action, syscall), result)
    return result


def _trusted_config(kernel: Kernel) -> Reading:
    """The published config, unless sysfs proves it wrong: a config without kexec on a kernel whose
    sysfs has kexec_loaded (which only CONFIG_KEXEC_CORE creates) is stale or damaged, so unknown."""
    config = kernel.config()
    options = config.value
    if isinstance(options, dict) and not _has_kexec(options):
        loaded = kernel.sysfs_kexec()["kexec_loaded"]
        if loaded.value is not None:
            return Reading(f"{config.path} (says no kexec, but {loaded.path} exists: not this kernel's config)")
    return config


def _has_kexec(options: dict) -> bool:
    """Whether a config has CONFIG_KEXEC_CORE (older kernels: KEXEC; either syscall selects it)."""
    return "y" in (options.get("KEXEC_CORE"), options.get("KEXEC"), options.get("KEXEC_FILE"))


def _program(choice: Choice | None) -> tuple[Choice | None, Finding]:
    try:
        chosen = choice or choose(verify=True)
    except KexecBinError as error:
        return None, Finding(
            "program",
            BLOCKED,
            "KEXEC_BIN_PREFER, PATH, /usr/sbin, /sbin, the wheel",
            "no usable kexec program",
            EVERYTHING,
            fix=str(error),
        )
    return chosen, Finding("program", OK, chosen.path, f"`kexec` runs the {chosen.source} kexec ({chosen.reason})")


def _syscalls(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """Is each syscall built in? From the config, else from the sysfs files that KEXEC_CORE creates."""
    options = config.value
    if isinstance(options, dict):
        if not _has_kexec(options):
            yield Finding(
                "kexec",
                BLOCKED,
                f"{config.path}: CONFIG_KEXEC_CORE is not set",
                "the kernel was built without kexec",
                EVERYTHING + (ops.PANIC,),
                fix=_REBUILD.format(option="KEXEC"),
            )
        for name, option in ((ops.KEXEC_LOAD, "KEXEC"), (ops.KEXEC_FILE_LOAD, "KEXEC_FILE")):
            value = options.get(option, "n")
            if value == "y":
                yield Finding(name, OK, f"{config.path}: CONFIG_{option}=y", f"the kernel has the {name} system call")
            else:
                yield Finding(
                    name,
                    BLOCKED,
                    f"{config.path}: CONFIG_{option} is not set",
                    f"the kernel was built without the {name} system call",
                    (name,),
                    fix=_REBUILD.format(option=option),
                )
        return
    loaded = kernel.sysfs_kexec()["kexec_loaded"]
    if loaded.value is not None:
        yield Finding(
            "kexec",
            OK,
            f"{config.path}: not published; {loaded.path} exists",
            "the kernel has kexec (CONFIG_KEXEC_CORE); which syscalls, only its config would tell",
        )
    elif kernel.sysfs_mounted():
        yield Finding(
            "kexec",
            BLOCKED,
            f"{config.path}: not published; {loaded.path} is missing",
            "the kernel was built without kexec (no CONFIG_KEXEC_CORE)",
            EVERYTHING + (ops.PANIC,),
            fix=_REBUILD.format(option="KEXEC"),
        )
    else:
        yield Finding(
            "kexec",
            UNKNOWN,
            f"{config.path}: not published; /sys is not mounted",
            "cannot tell whether the kernel has kexec",
            EVERYTHING,
            fix="mount sysfs, or publish the config (CONFIG_IKCONFIG_PROC, or /boot/config-$(uname -r))",
            commands=("mount -t sysfs sysfs /sys",),
        )


_REBUILD = (
    "boot a kernel built with CONFIG_{option}=y (every major distribution's kernel is); "
    "kexec cannot work around a missing syscall"
)


def _options(config: Reading) -> dict:
    """The kernel's build options; none when its config is not published."""
    return config.value if isinstance(config.value, dict) else {}


def _signatures(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """KEXEC_SIG_FORCE: kexec_file_load accepts only kernels signed by a trusted key."""
    options = _options(config)
    if options.get("KEXEC_SIG_FORCE") == "y":
        yield Finding(
            "signature",
            SIGNED,
            f"{config.path}: CONFIG_KEXEC_SIG_FORCE=y",
            "kexec_file_load accepts only kernels signed by a key the kernel trusts",
            (ops.KEXEC_FILE_LOAD,),
            fix="load a signed kernel (your distribution's /boot/vmlinuz-* are) with kexec -s",
        )


def _load_disabled(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """kernel.kexec_load_disabled (one-way until reboot) and the load limits of newer kernels."""
    disabled = kernel.sysctl("kexec_load_disabled")
    if disabled.value == "1":
        yield Finding(
            "kexec_load_disabled",
            BLOCKED,
            f"{disabled.path}: 1",
            "loading kernels is switched off until the next reboot (kernel.kexec_load_disabled=1)",
            ops.SYSCALLS + (ops.PANIC,),
            fix="the switch is one-way: remove kernel.kexec_load_disabled=1 from the sysctl settings "
            "that set it, reboot, and load before anything sets it again",
            commands=("grep -rs kexec_load_disabled /etc/sysctl.conf /etc/sysctl.d /usr/lib/sysctl.d /run/sysctl.d",),
        )
    elif disabled.value == "0":
        yield Finding("kexec_load_disabled", OK, f"{disabled.path}: 0", "loading kernels is allowed")
    for kind, affects in (("reboot", ops.SYSCALLS), ("panic", (ops.PANIC,))):
        limit = kernel.sysctl(f"kexec_load_limit_{kind}")
        if limit.value == "0":
            yield Finding(
                f"kexec_load_limit_{kind}",
                BLOCKED,
                f"{limit.path}: 0",
                f"no more {kind} kernels may be loaded until the next reboot",
                affects,
                fix="the limit only goes down: reboot, and raise it before it runs out",
                commands=(f"sysctl kernel.kexec_load_limit_{kind}=-1",),
            )


def _lockdown(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """Lockdown refuses kexec_load; kexec_file_load then needs a signed kernel."""
    mode = kernel.lockdown()
    options = _options(config)
    if mode.value in ("integrity", "confidentiality"):
        yield Finding(
            "lockdown",
            BLOCKED,
            f"{mode.path}: [{mode.value}]",
            f"the kernel is locked down ({mode.value}): kexec_load is refused",
            (ops.KEXEC_LOAD,),
            fix="use kexec_file_load with a signed kernel: kexec -s -l /boot/vmlinuz-... "
            "(lockdown is lifted only by booting without it, e.g. with Secure Boot off)",
        )
        signed = options.get("KEXEC_SIG") == "y"
        yield Finding(
            "lockdown",
            SIGNED if signed else BLOCKED,
            f"{mode.path}: [{mode.value}]",
            "locked down: kexec_file_load accepts only kernels signed by a trusted key"
            if signed
            else "locked down without CONFIG_KEXEC_SIG: kexec_file_load cannot verify, so refuses",
            (ops.KEXEC_FILE_LOAD,),
            fix="load a kernel signed by a key the kernel trusts, with kexec -s",
        )
    elif mode.value == "none":
        shown = "[none]" if kernel.exists("/sys/kernel/security/lockdown") else "absent (no lockdown LSM)"
        yield Finding("lockdown", OK, f"{mode.path}: {shown}", "the kernel is not locked down")
    else:
        mounted = kernel.securityfs_mounted()
        yield Finding(
            "lockdown",
            INFO,
            f"{mode.path}: {'unreadable' if mounted else 'absent: securityfs is not mounted'}",
            "lockdown state unknown ("
            + ("the file is readable by root only)" if mounted else "securityfs is not mounted)"),
            fix="" if mounted else "mount securityfs to see it",
            commands=() if mounted else ("mount -t securityfs securityfs /sys/kernel/security",),
        )


def _secure_boot(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """Secure Boot on: distribution kernels refuse unsigned kexec (IMA arch policy, lockdown)."""
    if not kernel.efi():
        yield Finding(
            "secure boot",
            OK,
            f"{kernel.path('/sys/firmware/efi')}: absent",
            "not booted by EFI firmware: no Secure Boot",
        )
        return
    secure, setup = kernel.efi_variable("SecureBoot"), kernel.efi_variable("SetupMode")
    if secure.value is None:
        yield Finding("secure boot", INFO, f"{secure.path}: unreadable", "Secure Boot state unknown")
        return
    if not secure.value or setup.value:
        state = "off" if not secure.value else "in setup mode (not enforcing)"
        yield Finding("secure boot", OK, f"{secure.path}: {int(secure.value)}", f"Secure Boot is {state}")
        return
    options = _options(config)
    evidence = f"{secure.path}: 1"
    yield Finding("secure boot", INFO, evidence, "Secure Boot is on")
    if options.get("KEXEC_SIG") == "y" and options.get("IMA") == "y":
        yield Finding(
            "secure boot",
            BLOCKED,
            f"{evidence}; {config.path}: CONFIG_KEXEC_SIG=y, CONFIG_IMA=y",
            "with Secure Boot on, IMA refuses kexec_load (it cannot appraise an image without a file)",
            (ops.KEXEC_LOAD,),
            fix="use kexec_file_load with a signed kernel: kexec -s -l /boot/vmlinuz-...",
        )
    if options.get("KEXEC_SIG") == "y":
        yield Finding(
            "secure boot",
            SIGNED,
            f"{evidence}; {config.path}: CONFIG_KEXEC_SIG=y",
            "with Secure Boot on, kexec_file_load accepts only kernels signed by a trusted key",
            (ops.KEXEC_FILE_LOAD,),
            fix="load a kernel signed by your distribution (or enrol your key with mokutil)",
        )
    if options.get("LOCK_DOWN_IN_EFI_SECURE_BOOT") == "y" and kernel.lockdown().value is None:
        yield Finding(
            "secure boot",
            BLOCKED,
            f"{evidence}; {config.path}: CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT=y",
            "with Secure Boot on, this kernel locks itself down: kexec_load is refused",
            (ops.KEXEC_LOAD,),
            fix="use kexec_file_load with a signed kernel: kexec -s -l /boot/vmlinuz-...",
        )


def _privilege(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """kexec needs CAP_SYS_BOOT in the initial user namespace: root on the host, not in a container."""
    namespace = kernel.initial_user_namespace()
    if namespace.value is False:
        yield Finding(
            "user namespace",
            BLOCKED,
            f"{namespace.path}: not the identity map",
            "running inside a user namespace (a container): kexec needs CAP_SYS_BOOT in the host's "
            "initial namespace, which no container has",
            EVERYTHING,
            fix="run kexec on the host itself (or in a privileged container without a user namespace)",
        )
    elif namespace.value is True:
        yield Finding("user namespace", OK, f"{namespace.path}: 0 0 4294967295", "in the initial user namespace")
    capability = kernel.capabilities()
    if capability.value is False:
        yield Finding(
            "capability",
            BLOCKED,
            f"{capability.path}: CapEff lacks CAP_SYS_BOOT",
            "this process may not load or boot kernels (no CAP_SYS_BOOT)",
            EVERYTHING,
            fix="run as root",
            commands=("sudo kexec ...",),
        )
    elif capability.value is True:
        yield Finding(
            "capability", OK, f"{capability.path}: CapEff has CAP_SYS_BOOT", "allowed to load and boot kernels"
        )
    else:
        yield Finding(
            "capability",
            UNKNOWN,
            f"{capability.path}: unreadable",
            "cannot tell whether CAP_SYS_BOOT is held",
            EVERYTHING,
        )


def _xen(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """A Xen dom0 kexecs through the hypervisor, which needs kexec-tools built with Xen's libraries."""
    xen = kernel.xen()
    if xen.value == "dom0" and program and program.source == "bundled":
        yield Finding(
            "xen",
            BLOCKED,
            f"{xen.path}: control_d",
            "a Xen dom0 loads kernels through the hypervisor; the bundled static kexec has no Xen support",
            EVERYTHING + (ops.PANIC,),
            fix="install your distribution's kexec-tools (built with Xen support); `kexec` then runs it",
            commands=("apt install kexec-tools  # or dnf/zypper/apk",),
        )
    elif xen.value:
        yield Finding("xen", INFO, str(xen.path), f"running on Xen ({xen.value})")


def _crash(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """A crash (panic) kernel loads only into memory reserved at boot with crashkernel=."""
    if isinstance(config.value, dict) and not _has_kexec(config.value):
        return  # no kexec at all: the kexec finding says so, and crashkernel= would not help
    size = kernel.sysfs_kexec()["kexec_crash_size"]
    if size.value is not None and not (size.value.isascii() and size.value.isdigit()):
        size = Reading(size.path)  # not a number of bytes: unknown
    cmdline = kernel.cmdline()
    reserved = "crashkernel=" in (cmdline.value or "")
    if size.value == "0" or (size.value is None and cmdline.value is not None and not reserved):
        yield Finding(
            "crash kernel",
            BLOCKED,
            f"{size.path}: {size.value or 'absent'}; {cmdline.path}: {'has' if reserved else 'no'} crashkernel=",
            "no memory is reserved for a crash kernel, so kexec -p cannot load one",
            (ops.PANIC,),
            fix="add crashkernel=256M to the kernel command line, then reboot",
            commands=(
                "sed -i 's/^GRUB_CMDLINE_LINUX=\"/&crashkernel=256M /' /etc/default/grub",
                "update-grub && reboot",
            ),
        )
    elif size.value is not None:
        yield Finding(
            "crash kernel", OK, f"{size.path}: {size.value}", f"{size.value} bytes reserved for a crash kernel"
        )


def _state(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """Whether a kernel is loaded now: kexec -e needs one."""
    files = kernel.sysfs_kexec()
    loaded, crash = files["kexec_loaded"], files["kexec_crash_loaded"]
    if loaded.value == "0":
        yield Finding(
            "loaded",
            INFO,
            f"{loaded.path}: 0",
            "no kernel is loaded for kexec -e",
            (ops.EXEC,),
            fix="load one first: kexec -l /boot/vmlinuz-... --initrd=... --reuse-cmdline",
        )
    elif loaded.value == "1":
        yield Finding("loaded", OK, f"{loaded.path}: 1", "a kernel is loaded: kexec -e boots it")
    if crash.value == "1":
        yield Finding("crash loaded", OK, f"{crash.path}: 1", "a crash kernel is loaded")


def _way_back(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    from .protections import protections  # informational: what brings the machine back after a failed boot

    return protections(kernel)


_CHECKS: tuple = (  # each: Callable[[Kernel, Reading, Choice | None], Iterable[Finding]]
    _syscalls,
    _signatures,
    _load_disabled,
    _lockdown,
    _secure_boot,
    _privilege,
    _xen,
    _crash,
    _way_back,
    _state,
)
