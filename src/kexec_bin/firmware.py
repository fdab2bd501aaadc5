"""The firmware path: boot a plan's verified files once through the boot loader, where kexec cannot work.

`--via firmware` stages the very kernel, initrd and command line the plan checked as a one-shot
GRUB entry and reboots normally (bin456789/reinstall's approach): the files go to /boot/kexec-bin/,
the entry to GRUB's custom.cfg (update-grub's 41_custom sources it; no update-grub run), and
grubenv's next_entry names it once, as grub-reboot does. GRUB clears next_entry as it boots it, so
the boot after that returns to the default. The system that comes up removes the staged files and
the entry (the same one-boot unit as the way back's confirm step) when it is the old system again.

`--via auto` takes this path only where the doctor predicts kexec cannot work:
a load it reports blocked (kexec_load_disabled, no kexec in the kernel, lockdown refusing the
load, a Xen dom0 without Xen support) or a Xen PV guest, which cannot kexec at all.
"""

from __future__ import annotations

import os

from .errors import PlanError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from .plan.model import BootPlan

KEXEC, FIRMWARE, AUTO = "kexec", "firmware", "auto"
VIAS = (KEXEC, FIRMWARE, AUTO)
# The doctor's checks whose "blocked" means the kernel itself will not kexec (no privilege is not one:
# the firmware path needs root as much as kexec does).
KERNEL_REFUSES = ("kexec", "kexec_load_disabled", "kexec_load_limit_reboot", "lockdown", "signature", "xen")
STAGED = "/boot/kexec-bin"
ENTRY_ID = "kexec-bin-once"
# The menu entry; `search --file` finds the file system that holds the staged kernel, wherever /boot is.
ENTRY = """# kexec-bin: boots once (grubenv's next_entry); removed by the next boot of the system that wrote it.
menuentry 'kexec-bin: {title}' --id '{entry_id}' {{
\tsearch --no-floppy --file --set=root {kernel}
\techo 'kexec-bin: booting the staged kernel once'
\tlinux {kernel} {cmdline}
\tinitrd {initrd}
}}
"""


def choose_via(via: str, root: str = "/") -> tuple[str, str]:
    """kexec or firmware for `--via`, and why (auto asks the doctor whether kexec can load a kernel here)."""
    if via != AUTO:
        return via, f"--via {via}"
    from . import ops
    from .doctor import BLOCKED, support

    report = support(root, way_back=False)
    blockers = [finding for finding in report.findings if finding.status == BLOCKED and finding.check in KERNEL_REFUSES]
    if report.state(ops.LOAD) == BLOCKED and blockers:
        return FIRMWARE, "the doctor predicts kexec cannot load here: " + "; ".join(
            f"{finding.check} ({finding.evidence})" for finding in blockers
        )
    from .read import Tree

    guest_type = Tree(root).read_capped("/sys/hypervisor/guest_type", 64)
    if guest_type is not None and guest_type.strip() == b"PV":
        return FIRMWARE, "a Xen PV guest cannot kexec (/sys/hypervisor/guest_type: PV)"
    return KEXEC, "the doctor finds nothing that stops a kexec load"


def grub_config(root: str = "/") -> str | None:
    """The GRUB menu kexec-bin can add a one-shot entry to (its folder holds grubenv), or None."""
    from .bootloader import GRUB_CONFIGS, inside

    return next((config for config in GRUB_CONFIGS if os.path.isfile(inside(root, config))), None)


def describe(plan: BootPlan, root: str = "/") -> str:
    """The plan's line for the firmware path; PlanError where no boot loader kexec-bin drives is found."""
    config = grub_config(root)
    if config is None:
        raise PlanError(
            "--via firmware: no GRUB menu (/boot/grub/grub.cfg, /boot/grub2/grub.cfg) to add a one-shot entry to, "
            "and kexec cannot work here either: boot the files by hand, or fix what the doctor reports"
        )
    folder = os.path.dirname(config)
    return (
        f"firmware: the files go to {STAGED}/, entry {ENTRY_ID!r} to {folder}/custom.cfg, and {folder}/grubenv's "
        "next_entry names it once (as grub-reboot does); then a normal reboot; the boot after returns to the default"
    )


def boot(plan: BootPlan, mode: str, *, root: str = "/", out: TextIO) -> int:
    """Stage `plan` as GRUB's one-shot entry, then (in boot mode) reboot through the firmware."""
    from . import grubenv
    from .bootloader import inside
    from .plan.model import BOOT

    config = grub_config(root)
    if config is None:
        raise PlanError("--via firmware: no GRUB menu found; nothing was staged")
    folder = os.path.dirname(config)
    custom = inside(root, os.path.join(folder, "custom.cfg"))
    if os.path.lexists(custom) and not _ours(custom):
        raise PlanError(
            f"{folder}/custom.cfg exists and is not kexec-bin's: the firmware path would replace it (and remove it "
            "afterwards); move its entries to /etc/grub.d/40_custom and run update-grub, then try again"
        )
    for word in (plan.cmdline, plan.title):
        if "\n" in word or "'" in word:
            raise PlanError(f"{word!r}: a quote or newline cannot go into a GRUB menu entry; nothing was staged")
    kernel = os.path.join(STAGED, "vmlinuz")
    initrd = os.path.join(STAGED, "initrd")
    # GRUB sees the file system that holds /boot: on a /boot of its own, the paths start below it.
    boot_apart = os.path.ismount(inside(root, "/boot"))
    on_disk = (lambda path: path[len("/boot") :]) if boot_apart else (lambda path: path)
    entry = ENTRY.format(
        title=plan.title,
        entry_id=ENTRY_ID,
        kernel=on_disk(kernel),
        initrd=on_disk(initrd) if plan.initrds else "",
        cmdline=plan.cmdline,
    )
    if not plan.initrds:
        entry = entry.replace("\tinitrd \n", "")
    os.makedirs(inside(root, STAGED), exist_ok=True)
    grubenv.write_atomically(inside(root, kernel), sources=(plan.kernel.path,))
    if plan.initrds:
        grubenv.write_atomically(inside(root, initrd), sources=tuple(initrd.path for initrd in plan.initrds))
    grubenv.write_atomically(custom, entry.encode())
    grubenv.set_grubenv(inside(root, os.path.join(folder, "grubenv")), {"next_entry": ENTRY_ID})
    grubenv.install_confirm(
        root, os.path.join(folder, "grubenv"), ENTRY_ID, (os.path.join(folder, "custom.cfg"), STAGED)
    )
    print(f"staged: {STAGED}/ and entry {ENTRY_ID!r} in {folder}/custom.cfg; next_entry={ENTRY_ID}", file=out)
    if mode != BOOT:
        print(
            "boot it with `systemctl reboot` (GRUB starts it once); `grub-editenv - unset next_entry` cancels", file=out
        )
        return 0
    if os.path.abspath(root) != "/":
        print(f"staged under --root {root}: this machine is not rebooted", file=out)
        return 0
    import subprocess

    out.flush()
    command = ["systemctl", "reboot"] if os.path.isdir(os.path.join(root, "run/systemd/system")) else ["reboot"]
    return subprocess.run(command).returncode


def _ours(path: str) -> bool:
    from .read import read_capped

    text = read_capped(path, 64 * 1024)
    return text is not None and text.startswith(ENTRY.split("\n", 1)[0].encode())
