"""The doctor against realistic trees: Debian's real kernel config, edited per scenario, and real-format procfs/sysfs."""

from __future__ import annotations

import pytest

from kexec_bin.doctor import BLOCKED, OK, SIGNED, UNKNOWN, preflight, support
from kexec_bin.errors import BlockedError
from kexec_bin.ops import KEXEC_FILE_LOAD, KEXEC_LOAD
from kexec_bin.resolve import Choice

from .conftest import set_options

SYSTEM = Choice("/usr/sbin/kexec", "system", "the host's kexec-tools")
BUNDLED = Choice("/venv/lib/kexec_bin/bin/kexec", "bundled", "no kexec-tools")


def check(tree, choice=SYSTEM):
    return support(str(tree.root), choice)


def checks_named(result, name):
    return [f for f in result.findings if f.check == name]


def test_debian_kernel_fully_supports_kexec(tree):
    result = check(tree)
    assert result.verdict == OK
    assert result.state("load", KEXEC_LOAD) == OK and result.state("load", KEXEC_FILE_LOAD) == OK
    assert result.state("panic") == OK
    (config,) = checks_named(result, KEXEC_LOAD)
    assert config.evidence == f"{tree.root}/proc/config.gz: CONFIG_KEXEC=y"


def test_kernel_without_kexec_is_blocked(tree, debian_kernel):
    tree.set_config(set_options(debian_kernel.config, KEXEC="n", KEXEC_FILE="n", KEXEC_CORE="n", CRASH_DUMP="n"))
    for name in ("kexec_loaded", "kexec_crash_loaded", "kexec_crash_size"):
        tree.remove(f"/sys/kernel/{name}")
    result = check(tree)
    assert result.verdict == BLOCKED
    assert result.state("exec") == BLOCKED and result.state("panic") == BLOCKED
    assert "CONFIG_KEXEC is not set" in checks_named(result, KEXEC_LOAD)[0].evidence
    assert "CONFIG_KEXEC_FILE is not set" in checks_named(result, KEXEC_FILE_LOAD)[0].evidence
    with pytest.raises(BlockedError, match="built without the kexec_load system call") as raised:
        preflight(("load", "auto"), SYSTEM, root=str(tree.root))
    assert raised.value.support.verdict == BLOCKED


def test_only_kexec_file_load(tree, debian_kernel):
    tree.set_config(set_options(debian_kernel.config, KEXEC="n"))
    result = check(tree)
    assert result.state("load", KEXEC_LOAD) == BLOCKED
    assert result.state("load", KEXEC_FILE_LOAD) == OK
    assert result.verdict == OK  # kexec-tools tries kexec_file_load first
    with pytest.raises(BlockedError, match="with kexec_load"):
        preflight(("load", "kexec_load"), SYSTEM, root=str(tree.root))
    preflight(("load", "kexec_file_load"), SYSTEM, root=str(tree.root))


@pytest.mark.parametrize("mode", ["integrity", "confidentiality"])
def test_lockdown_refuses_kexec_load_and_needs_signed_kernels(tree, mode):
    tree.write("/sys/kernel/security/lockdown", f"none {' '.join(f'[{m}]' if m == mode else m for m in ('integrity', 'confidentiality'))}\n")
    result = check(tree)
    assert result.state("load", KEXEC_LOAD) == BLOCKED
    assert result.state("load", KEXEC_FILE_LOAD) == SIGNED
    assert result.verdict == SIGNED
    assert any(f"[{mode}]" in f.evidence for f in result.blockers("load", KEXEC_LOAD))


def test_kexec_load_disabled_blocks_both_syscalls(tree):
    tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n")
    result = check(tree)
    assert result.verdict == BLOCKED
    assert result.state("panic") == BLOCKED
    assert result.state("exec") == OK  # a kernel loaded before the switch still boots
    (finding,) = checks_named(result, "kexec_load_disabled")
    assert "reboot" in finding.fix and "sysctl.d" in finding.commands[0]


def test_without_cap_sys_boot(tree):
    tree.set_capability(False)
    result = check(tree)
    assert result.verdict == BLOCKED and result.state("exec") == BLOCKED
    assert checks_named(result, "capability")[0].fix == "run as root"


def test_in_a_user_namespace_container(tree):
    # What an unprivileged container (podman, docker with userns-remap) shows: its root is a host uid range.
    tree.write("/proc/self/uid_map", "         0     100000      65536\n")
    result = check(tree)
    assert result.verdict == BLOCKED
    assert "container" in checks_named(result, "user namespace")[0].meaning


def test_xen_dom0_blocks_only_the_bundled_kexec(tree):
    tree.write("/proc/xen/capabilities", "control_d\n")
    assert check(tree, BUNDLED).verdict == BLOCKED
    assert "no Xen support" in checks_named(check(tree, BUNDLED), "xen")[0].meaning
    assert check(tree, SYSTEM).verdict == OK


def test_no_config_published_decides_from_sysfs(tree, debian_kernel):
    tree.remove("/proc/config.gz")
    result = check(tree)
    assert result.verdict == OK
    assert "not published" in checks_named(result, "kexec")[0].evidence


def test_no_config_and_no_kexec_files_means_no_kexec(tree):
    tree.remove("/proc/config.gz")
    tree.remove("/sys/kernel/kexec_loaded")
    assert check(tree).verdict == BLOCKED


def test_no_config_and_no_sysfs_is_unknown_not_no(tree):
    tree.remove("/proc/config.gz")
    tree.remove("/sys")
    result = check(tree)
    assert result.verdict == UNKNOWN
    preflight(("load", "auto"), SYSTEM, root=str(tree.root))  # unknown never blocks


def test_config_from_boot_when_proc_has_none(tree, debian_kernel):
    tree.remove("/proc/config.gz")
    tree.write(f"/boot/config-{debian_kernel.release}", set_options(debian_kernel.config, KEXEC_FILE="n"))
    result = check(tree)
    assert result.state("load", KEXEC_FILE_LOAD) == BLOCKED
    assert checks_named(result, KEXEC_FILE_LOAD)[0].evidence.startswith(f"{tree.root}/boot/config-{debian_kernel.release}:")


def test_sig_force_with_secure_boot_needs_signed_kernels(tree, debian_kernel):
    tree.set_config(set_options(debian_kernel.config, KEXEC_SIG_FORCE="y"))
    tree.set_efi_variable("SecureBoot", True)
    # Debian's kernel locks itself down under Secure Boot; here securityfs is not mounted, so only the config tells.
    tree.remove("/sys/kernel/security")
    result = check(tree)
    assert result.state("load", KEXEC_LOAD) == BLOCKED
    assert result.state("load", KEXEC_FILE_LOAD) == SIGNED
    assert result.verdict == SIGNED
    reasons = " ".join(f.meaning for f in result.blockers("load", KEXEC_LOAD))
    assert "IMA refuses kexec_load" in reasons and "locks itself down" in reasons


def test_kernel_without_the_lockdown_lsm(tree):
    # securityfs is mounted (it lists the active LSMs) but has no lockdown file.
    tree.remove("/sys/kernel/security/lockdown")
    tree.write("/sys/kernel/security/lsm", "capability,landlock,yama,apparmor")
    (finding,) = checks_named(check(tree), "lockdown")
    assert (finding.status, finding.evidence) == (OK, f"{tree.root}/sys/kernel/security/lockdown: absent (no lockdown LSM)")


def test_secure_boot_in_setup_mode_does_not_enforce(tree):
    tree.set_efi_variable("SecureBoot", True)
    tree.set_efi_variable("SetupMode", True)
    assert check(tree).verdict == OK


def test_panic_load_needs_reserved_memory(tree):
    tree.write("/sys/kernel/kexec_crash_size", "0\n")
    result = check(tree)
    assert result.verdict == OK
    assert result.state("panic") == BLOCKED
    with pytest.raises(BlockedError, match="crashkernel=256M"):
        preflight(("panic", "auto"), SYSTEM, root=str(tree.root))


def test_damaged_config_gz_falls_back_to_boot(tree, debian_kernel):
    tree.write("/proc/config.gz", tree.root.joinpath("proc/config.gz").read_bytes()[:4096])
    tree.write(f"/boot/config-{debian_kernel.release}", debian_kernel.config)
    result = check(tree)
    assert result.verdict == OK
    assert checks_named(result, KEXEC_LOAD)[0].evidence.startswith(f"{tree.root}/boot/config-")
