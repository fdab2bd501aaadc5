"""Checks → evidence → verdict → fix: can this machine load (and boot) a kernel with kexec?

Each check reads what the kernel publishes and returns findings. A finding names the file it
read, what that means, the operations it affects and how to fix it. `Support` combines them:
an operation is blocked only on certain evidence; when the evidence is missing it is unknown.
The same checks are the `kexec` shim's preflight and the API's explanation of a failure.
"""

from __future__ import annotations

from .errors import BlockedError, KexecBinError, UsageError
from .kernel import Kernel, Reading
from . import ops
from .resolve import Choice, choose

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the preflight of every `kexec --load` a few milliseconds
    from typing import Callable, Iterable

OK, INFO, SIGNED, UNKNOWN, BLOCKED = "ok", "info", "signed-only", "unknown", "blocked"
# How good a state is for the user, best first: "auto" mode gets the better of the two syscalls.
_RANK = {OK: 0, SIGNED: 1, UNKNOWN: 2, BLOCKED: 3}
# A finding's `affects` names the syscalls it blocks, ops.EXEC (kexec -e) and ops.PANIC (kexec -p).
EVERYTHING = (*ops.SYSCALLS, ops.EXEC)


class Finding:
    """One check's result: what was read, what it means, what it blocks and the fix."""

    __slots__ = ("check", "status", "evidence", "meaning", "affects", "fix", "commands")

    def __init__(self, check: str, status: str, evidence: str, meaning: str, affects: tuple = (),
                 fix: str = "", commands: tuple = ()) -> None:
        self.check, self.status, self.evidence, self.meaning = check, status, evidence, meaning
        self.affects, self.fix, self.commands = affects, fix, commands

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"Finding({self.check!r}, {self.status!r}, {self.evidence!r})"


class Support:
    """Everything the doctor found, and what it means for a load, a panic load and an exec."""

    __slots__ = ("root", "program", "program_source", "findings")

    def __init__(self, root: str, program: str | None, program_source: str | None, findings: tuple = ()) -> None:
        self.root, self.program, self.program_source, self.findings = root, program, program_source, findings

    def state(self, action: str = ops.LOAD, syscall: str = ops.AUTO) -> str:
        """ok, signed-only (only a signed kernel loads), unknown or blocked."""
        _check_operation(action, syscall)
        if action == ops.EXEC:
            return self._state_of(ops.EXEC)
        states = [self._state_of(name) for name in ops.chosen(syscall)]
        best = min(states, key=_RANK.__getitem__)
        if action == ops.PANIC:
            best = max(best, self._state_of(ops.PANIC), key=_RANK.__getitem__)
        return best

    @property
    def verdict(self) -> str:
        """The state of an ordinary load, kexec-tools' default (either syscall)."""
        return self.state(ops.LOAD)

    def blockers(self, action: str = ops.LOAD, syscall: str = ops.AUTO) -> list:
        """The findings that make `action` blocked (or unknown, or signed-only), worst first."""
        _check_operation(action, syscall)
        names = (ops.EXEC,) if action == ops.EXEC else ops.chosen(syscall)
        if action == ops.PANIC:
            names = (*names, ops.PANIC)
        found = [f for f in self.findings if f.status in (BLOCKED, UNKNOWN, SIGNED) and set(f.affects) & set(names)]
        return sorted(found, key=lambda f: -_RANK[f.status])

    def _state_of(self, name: str) -> str:
        statuses = [f.status for f in self.findings if name in f.affects and f.status in _RANK]
        return max(statuses, key=_RANK.__getitem__, default=OK)

    def to_json(self) -> str:
        """The report for machines: verdict, per-operation states, program and every finding."""
        import json

        document = {
            "verdict": self.verdict,
            ops.EXEC: self.state(ops.EXEC),
            "operations": {
                action: {syscall: self.state(action, syscall) for syscall in (ops.AUTO, *ops.SYSCALLS)}
                for action in (ops.LOAD, ops.PANIC)
            },
            "root": self.root,
            "program": {"path": self.program, "source": self.program_source},
            "findings": [finding.as_dict() for finding in self.findings],
        }
        return json.dumps(document, indent=2)

    def to_text(self) -> str:
        """The report for people: one block per check, then one verdict line."""
        lines = [f"kexec-bin doctor: can this machine load a kernel with kexec? (root {self.root})", ""]
        for finding in self.findings:
            lines.append(f"{finding.status.upper():<12} {finding.check}: {finding.meaning}")
            lines.append(f"{'':<12} read: {finding.evidence}")
            if finding.status != OK and finding.fix:
                lines.append(f"{'':<12} fix: {finding.fix}")
                lines += [f"{'':<12}   $ {command}" for command in finding.commands]
        lines += ["", f"verdict: {_VERDICTS[self.verdict]}"]
        return "\n".join(lines)


def _check_operation(action: str, syscall: str) -> None:
    if action not in ops.ACTIONS or (syscall != ops.AUTO and syscall not in ops.SYSCALLS):
        raise UsageError(f"operation ({action!r}, {syscall!r}): the action is one of {', '.join(ops.ACTIONS)}, "
                         f"the syscall one of {ops.AUTO}, {', '.join(ops.SYSCALLS)}")


_VERDICTS = {
    OK: "ok: kexec can load a kernel here",
    SIGNED: "ok for signed kernels only: load a kernel signed by a trusted key, with kexec -s",
    UNKNOWN: "unknown: the kernel does not publish enough to tell; kexec itself will say (try it)",
    BLOCKED: "blocked: kexec cannot load a kernel here (see the BLOCKED checks and their fixes)",
}


def support(root: str = "/", choice: Choice | None = None) -> Support:
    """Run every check against the kernel under `root`; `choice` defaults to what `kexec` would run."""
    kernel = Kernel(root)
    config = _trusted_config(kernel)
    program, program_finding = _program(choice)
    findings: list[Finding] = [program_finding]
    for check in _CHECKS:
        findings += check(kernel, config, program)
    return Support(
        root=root,
        program=program.path if program else None,
        program_source=program.source if program else None,
        findings=tuple(findings),
    )


def preflight(operation: tuple, choice: Choice, root: str = "/") -> Support:
    """Raise `BlockedError` when the kernel certainly refuses `operation` (action, syscall)."""
    action, syscall = operation
    _check_operation(action, syscall)
    result = support(root, choice)
    if result.state(action, syscall) == BLOCKED:
        raise BlockedError(explain(result, action, syscall), result)
    return result


def explain(result: Support, action: str = ops.LOAD, syscall: str = ops.AUTO) -> str:
    """Why `action` cannot happen, with each blocker's evidence and fix, in a few lines."""
    what = {ops.LOAD: "load a kernel", ops.PANIC: "load a crash kernel", ops.EXEC: "boot the loaded kernel"}[action]
    via = "" if syscall == ops.AUTO or action == ops.EXEC else f" with {syscall}"
    lines = [f"the kernel will refuse to {what}{via}:"]
    for finding in result.blockers(action, syscall):
        if finding.status != BLOCKED:
            continue
        lines.append(f"  - {finding.meaning} ({finding.evidence})")
        if finding.fix:
            lines.append(f"    fix: {finding.fix}")
            lines += [f"      $ {command}" for command in finding.commands]
    lines.append("  run `kexec-bin doctor` for the full report; KEXEC_BIN_NO_CHECK=1 skips this check")
    return "\n".join(lines)


def _trusted_config(kernel: Kernel) -> Reading:
    """The published config, unless sysfs proves it wrong: a config without kexec on a kernel whose
    sysfs has kexec_loaded (which only CONFIG_KEXEC_CORE creates) is stale or damaged, so unknown."""
    config = kernel.config()
    options = config.value
    if isinstance(options, dict) and "y" not in (options.get("KEXEC_CORE"), options.get("KEXEC"), options.get("KEXEC_FILE")):
        loaded = kernel.sysfs_kexec()["kexec_loaded"]
        if loaded.value is not None:
            return Reading(f"{config.path} (says no kexec, but {loaded.path} exists: not this kernel's config)")
    return config


def _program(choice: Choice | None) -> tuple[Choice | None, Finding]:
    try:
        chosen = choice or choose()
    except KexecBinError as error:
        return None, Finding("program", BLOCKED, "KEXEC_BIN_PREFER, PATH, /usr/sbin, /sbin, the wheel",
                             "no usable kexec program", EVERYTHING, fix=str(error))
    return chosen, Finding("program", OK, chosen.path, f"`kexec` runs the {chosen.source} kexec ({chosen.reason})")


def _syscalls(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """Is each syscall built in? From the config, else from the sysfs files that KEXEC_CORE creates."""
    options = config.value
    if isinstance(options, dict):
        if "y" not in (options.get("KEXEC_CORE"), options.get("KEXEC"), options.get("KEXEC_FILE")):
            yield Finding("kexec", BLOCKED, f"{config.path}: CONFIG_KEXEC_CORE is not set",
                          "the kernel was built without kexec", EVERYTHING + (ops.PANIC,),
                          fix=_REBUILD.format(option="KEXEC"))
        for name, option in ((ops.KEXEC_LOAD, "KEXEC"), (ops.KEXEC_FILE_LOAD, "KEXEC_FILE")):
            value = options.get(option, "n")
            if value == "y":
                yield Finding(name, OK, f"{config.path}: CONFIG_{option}=y", f"the kernel has the {name} system call")
            else:
                yield Finding(name, BLOCKED, f"{config.path}: CONFIG_{option} is not set",
                              f"the kernel was built without the {name} system call", (name,),
                              fix=_REBUILD.format(option=option))
        return
    loaded = kernel.sysfs_kexec()["kexec_loaded"]
    if loaded.value is not None:
        yield Finding("kexec", OK, f"{config.path}: not published; {loaded.path} exists",
                      "the kernel has kexec (CONFIG_KEXEC_CORE); which syscalls, only its config would tell")
    elif kernel.sysfs_mounted():
        yield Finding("kexec", BLOCKED, f"{config.path}: not published; {loaded.path} is missing",
                      "the kernel was built without kexec (no CONFIG_KEXEC_CORE)", EVERYTHING + (ops.PANIC,),
                      fix=_REBUILD.format(option="KEXEC"))
    else:
        yield Finding("kexec", UNKNOWN, f"{config.path}: not published; /sys is not mounted",
                      "cannot tell whether the kernel has kexec", EVERYTHING,
                      fix="mount sysfs, or publish the config (CONFIG_IKCONFIG_PROC, or /boot/config-$(uname -r))",
                      commands=("mount -t sysfs sysfs /sys",))


_REBUILD = ("boot a kernel built with CONFIG_{option}=y (every major distribution's kernel is); "
            "kexec cannot work around a missing syscall")


def _options(config: Reading) -> dict:
    """The kernel's build options; none when its config is not published."""
    return config.value if isinstance(config.value, dict) else {}


def _signatures(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """KEXEC_SIG_FORCE: kexec_file_load accepts only kernels signed by a trusted key."""
    options = _options(config)
    if options.get("KEXEC_SIG_FORCE") == "y":
        yield Finding("signature", SIGNED, f"{config.path}: CONFIG_KEXEC_SIG_FORCE=y",
                      "kexec_file_load accepts only kernels signed by a key the kernel trusts", (ops.KEXEC_FILE_LOAD,),
                      fix="load a signed kernel (your distribution's /boot/vmlinuz-* are) with kexec -s")


def _load_disabled(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """kernel.kexec_load_disabled (one-way until reboot) and the load limits of newer kernels."""
    disabled = kernel.sysctl("kexec_load_disabled")
    if disabled.value == "1":
        yield Finding("kexec_load_disabled", BLOCKED, f"{disabled.path}: 1",
                      "loading kernels is switched off until the next reboot (kernel.kexec_load_disabled=1)",
                      ops.SYSCALLS + (ops.PANIC,),
                      fix="the switch is one-way: remove kernel.kexec_load_disabled=1 from the sysctl settings "
                          "that set it, reboot, and load before anything sets it again",
                      commands=("grep -rs kexec_load_disabled /etc/sysctl.conf /etc/sysctl.d /usr/lib/sysctl.d /run/sysctl.d",))
    elif disabled.value == "0":
        yield Finding("kexec_load_disabled", OK, f"{disabled.path}: 0", "loading kernels is allowed")
    for kind, affects in (("reboot", ops.SYSCALLS), ("panic", (ops.PANIC,))):
        limit = kernel.sysctl(f"kexec_load_limit_{kind}")
        if limit.value == "0":
            yield Finding(f"kexec_load_limit_{kind}", BLOCKED, f"{limit.path}: 0",
                          f"no more {kind} kernels may be loaded until the next reboot", affects,
                          fix="the limit only goes down: reboot, and raise it before it runs out",
                          commands=(f"sysctl kernel.kexec_load_limit_{kind}=-1",))


def _lockdown(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """Lockdown refuses kexec_load; kexec_file_load then needs a signed kernel."""
    mode = kernel.lockdown()
    options = _options(config)
    if mode.value in ("integrity", "confidentiality"):
        yield Finding("lockdown", BLOCKED, f"{mode.path}: [{mode.value}]",
                      f"the kernel is locked down ({mode.value}): kexec_load is refused", (ops.KEXEC_LOAD,),
                      fix="use kexec_file_load with a signed kernel: kexec -s -l /boot/vmlinuz-... "
                          "(lockdown is lifted only by booting without it, e.g. with Secure Boot off)")
        signed = options.get("KEXEC_SIG") == "y"
        yield Finding("lockdown", SIGNED if signed else BLOCKED, f"{mode.path}: [{mode.value}]",
                      "locked down: kexec_file_load accepts only kernels signed by a trusted key" if signed
                      else "locked down without CONFIG_KEXEC_SIG: kexec_file_load cannot verify, so refuses",
                      (ops.KEXEC_FILE_LOAD,), fix="load a kernel signed by a key the kernel trusts, with kexec -s")
    elif mode.value == "none":
        shown = "[none]" if kernel.exists("/sys/kernel/security/lockdown") else "absent (no lockdown LSM)"
        yield Finding("lockdown", OK, f"{mode.path}: {shown}", "the kernel is not locked down")
    else:
        yield Finding("lockdown", INFO, f"{mode.path}: unreadable, or securityfs not mounted",
                      "lockdown state unknown (the file is readable by root only)")


def _secure_boot(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """Secure Boot on: distribution kernels refuse unsigned kexec (IMA arch policy, lockdown)."""
    if not kernel.efi():
        yield Finding("secure boot", OK, f"{kernel.path('/sys/firmware/efi')}: absent",
                      "not booted by EFI firmware: no Secure Boot")
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
        yield Finding("secure boot", BLOCKED, f"{evidence}; {config.path}: CONFIG_KEXEC_SIG=y, CONFIG_IMA=y",
                      "with Secure Boot on, IMA refuses kexec_load (it cannot appraise an image without a file)",
                      (ops.KEXEC_LOAD,), fix="use kexec_file_load with a signed kernel: kexec -s -l /boot/vmlinuz-...")
    if options.get("KEXEC_SIG") == "y":
        yield Finding("secure boot", SIGNED, f"{evidence}; {config.path}: CONFIG_KEXEC_SIG=y",
                      "with Secure Boot on, kexec_file_load accepts only kernels signed by a trusted key", (ops.KEXEC_FILE_LOAD,),
                      fix="load a kernel signed by your distribution (or enrol your key with mokutil)")
    if options.get("LOCK_DOWN_IN_EFI_SECURE_BOOT") == "y" and kernel.lockdown().value is None:
        yield Finding("secure boot", BLOCKED, f"{evidence}; {config.path}: CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT=y",
                      "with Secure Boot on, this kernel locks itself down: kexec_load is refused", (ops.KEXEC_LOAD,),
                      fix="use kexec_file_load with a signed kernel: kexec -s -l /boot/vmlinuz-...")


def _privilege(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """kexec needs CAP_SYS_BOOT in the initial user namespace: root on the host, not in a container."""
    namespace = kernel.initial_user_namespace()
    if namespace.value is False:
        yield Finding("user namespace", BLOCKED, f"{namespace.path}: not the identity map",
                      "running inside a user namespace (a container): kexec needs CAP_SYS_BOOT in the host's "
                      "initial namespace, which no container has", EVERYTHING,
                      fix="run kexec on the host itself (or in a privileged container without a user namespace)")
    elif namespace.value is True:
        yield Finding("user namespace", OK, f"{namespace.path}: 0 0 4294967295", "in the initial user namespace")
    capability = kernel.capabilities()
    if capability.value is False:
        yield Finding("capability", BLOCKED, f"{capability.path}: CapEff lacks CAP_SYS_BOOT",
                      "this process may not load or boot kernels (no CAP_SYS_BOOT)", EVERYTHING,
                      fix="run as root", commands=("sudo kexec ...",))
    elif capability.value is True:
        yield Finding("capability", OK, f"{capability.path}: CapEff has CAP_SYS_BOOT", "allowed to load and boot kernels")
    else:
        yield Finding("capability", UNKNOWN, f"{capability.path}: unreadable", "cannot tell whether CAP_SYS_BOOT is held",
                      EVERYTHING)


def _xen(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """A Xen dom0 kexecs through the hypervisor, which needs kexec-tools built with Xen's libraries."""
    xen = kernel.xen()
    if xen.value == "dom0" and program and program.source == "bundled":
        yield Finding("xen", BLOCKED, f"{xen.path}: control_d",
                      "a Xen dom0 loads kernels through the hypervisor; the bundled static kexec has no Xen support",
                      EVERYTHING + (ops.PANIC,),
                      fix="install your distribution's kexec-tools (built with Xen support); `kexec` then runs it",
                      commands=("apt install kexec-tools  # or dnf/zypper/apk",))
    elif xen.value:
        yield Finding("xen", INFO, str(xen.path), f"running on Xen ({xen.value})")


def _crash(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """A crash (panic) kernel loads only into memory reserved at boot with crashkernel=."""
    size = kernel.sysfs_kexec()["kexec_crash_size"]
    if size.value is not None and not (size.value.isascii() and size.value.isdigit()):
        size = Reading(size.path)  # not a number of bytes: unknown
    cmdline = kernel.cmdline()
    reserved = "crashkernel=" in (cmdline.value or "")
    if size.value == "0" or (size.value is None and cmdline.value is not None and not reserved):
        yield Finding("crash kernel", BLOCKED, f"{size.path}: {size.value or 'absent'}; {cmdline.path}: "
                      f"{'has' if reserved else 'no'} crashkernel=",
                      "no memory is reserved for a crash kernel, so kexec -p cannot load one", (ops.PANIC,),
                      fix="add crashkernel=256M to the kernel command line, "
                          "then reboot", commands=("sed -i 's/^GRUB_CMDLINE_LINUX=\"/&crashkernel=256M /' /etc/default/grub",
                                                   "update-grub && reboot"))
    elif size.value is not None:
        yield Finding("crash kernel", OK, f"{size.path}: {size.value}", f"{size.value} bytes reserved for a crash kernel")


def _state(kernel: Kernel, config: Reading, program: Choice | None) -> Iterable[Finding]:
    """Whether a kernel is loaded now: kexec -e needs one."""
    files = kernel.sysfs_kexec()
    loaded, crash = files["kexec_loaded"], files["kexec_crash_loaded"]
    if loaded.value == "0":
        yield Finding("loaded", INFO, f"{loaded.path}: 0", "no kernel is loaded for kexec -e", (ops.EXEC,),
                      fix="load one first: kexec -l /boot/vmlinuz-... --initrd=... --reuse-cmdline")
    elif loaded.value == "1":
        yield Finding("loaded", OK, f"{loaded.path}: 1", "a kernel is loaded: kexec -e boots it")
    if crash.value == "1":
        yield Finding("crash loaded", OK, f"{crash.path}: 1", "a crash kernel is loaded")


_CHECKS: tuple = (  # each: Callable[[Kernel, Reading, Choice | None], Iterable[Finding]]
    _syscalls, _signatures, _load_disabled, _lockdown, _secure_boot, _privilege, _xen, _crash, _state,
)
