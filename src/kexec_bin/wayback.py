"""The way back: every kexec arms a return to the system that ran it, without a human.

Two protections, armed by default, named in every plan, switched off with --no-way-back:

- **panic=N** on the next kernel's command line (unless the user's line sets `panic=` already:
  theirs is kept, no second one is added). A kernel that panics (a missing root, a bad driver)
  resets through the firmware after N seconds; initramfs-tools' `panic` (an initrd that cannot
  mount root) honours the same parameter and runs `reboot -f`.
- **a one-shot boot entry for the running kernel**, where the boot loader's default is another
  kernel (`reboot` into a newly installed one): a reset would boot that default, which would fail
  again. GRUB's grubenv gets `next_entry` as `grub-reboot` sets it, so the reset boots the running
  kernel once. The new system confirms it came up and clears the entry: a unit installed for one
  boot runs when multi-user.target is reached (the idea of systemd's boot assessment and Fedora's
  greenboot: confirm only when the new system is really up), then removes itself.

Arming (writing grubenv, installing the unit) happens only right before the boot (`arm`); a plan
printed with --dry-run changes nothing.
"""

from __future__ import annotations

import os

from .grubenv import CONFIRM_UNIT, install_confirm, set_grubenv, write_atomically
from .plan.model import OneShot, WayBack
from .protections import DEFAULT_DEADLINE_MINUTES, DEFAULT_PANIC_SECONDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import TextIO

    from .menus import Entry

# The installer's deadline: a script its startup sources (rootskel runs /lib/debian-installer-startup.d/S*),
# watching in the background with the installer's busybox. The network counts as up when the installer
# can fetch the very file it was booted from; with --ssh-key, a network-console login is needed too.
DEADLINE_SCRIPT = "lib/debian-installer-startup.d/S99kexec-bin-deadline"
DEADLINE_TEXT = """# kexec-bin (kexec_bin.wayback): no network{login} within {minutes} min: back to the old system
(
  deadline=$(( $(cut -d. -f1 /proc/uptime) + {seconds} ))
  while :; do
    if [ -d /var/lib/partman ]; then
      echo "kexec-bin: partitioning started: deadline disarmed" > /dev/console; exit 0
    fi
    if {disarm}; then
      echo "kexec-bin: {disarm_what}: deadline disarmed" > /dev/console; exit 0
    fi
    if [ "$(cut -d. -f1 /proc/uptime)" -ge "$deadline" ]; then
      echo "kexec-bin: deadline: no network{login} within {minutes} min; rebooting into the old system" > /dev/console
      sync; reboot -f
    fi
    sleep 5
  done
) </dev/null >/dev/null 2>&1 &
"""


def add_options(parser: argparse.ArgumentParser) -> None:
    """--via, --panic and --no-way-back, shared by every story command."""
    from .firmware import KEXEC, VIAS

    parser.add_argument(
        "--via",
        choices=VIAS,
        default=KEXEC,
        help="kexec (default); firmware: stage the same files as a one-shot GRUB entry and reboot normally; "
        "auto: firmware only where the doctor predicts kexec cannot work",
    )
    parser.add_argument(
        "--panic",
        type=_seconds,
        default=DEFAULT_PANIC_SECONDS,
        metavar="SECONDS",
        help="panic=SECONDS for the next kernel: a panic resets through the firmware "
        f"(default {DEFAULT_PANIC_SECONDS}; a panic= already on the command line is kept)",
    )
    parser.add_argument(
        "--no-way-back",
        dest="way_back",
        action="store_false",
        help="arm no way back: no panic=, no one-shot boot entry for the running kernel (netboot: no deadline)",
    )


def add_deadline_option(parser: argparse.ArgumentParser) -> None:
    """--deadline, for the stories that boot an installer (netboot): the only ones it would change."""
    parser.add_argument(
        "--deadline",
        type=_minutes,
        default=DEFAULT_DEADLINE_MINUTES,
        metavar="MINUTES",
        help="unless the installer's network works (and, with --ssh-key, someone logs in) within "
        f"MINUTES (default {DEFAULT_DEADLINE_MINUTES}), it reboots into this system; partitioning disarms it",
    )


def _seconds(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of seconds, 1 or more (0 would wait forever)")
    return int(text)


def _minutes(text: str) -> float:
    import argparse

    try:
        minutes = float(text)
    except ValueError:
        minutes = 0
    if not minutes > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give the minutes as a number above 0 (0.5 is 30 s)")
    return minutes


def deadline_archive(url: str, minutes: float, login: bool) -> tuple[bytes, str]:
    """The installer's deadline as an initrd to append (a cpio archive), and the plan's line for it.

    `url`: a file the installer must be able to fetch for its network to count as up (the kernel it
    was booted from, on the mirror it will install from); `login`: a network-console login is needed too.
    """
    import shlex

    from . import cpio

    network = f"wget -q -T 10 -O /dev/null {shlex.quote(url)}"
    disarm, what = (
        (f"{network} && ps | grep -q '[s]shd: installer'", "network up and someone logged in")
        if login
        else (network, "network up")
    )
    script = DEADLINE_TEXT.format(
        minutes=f"{minutes:g}",
        seconds=round(minutes * 60),
        disarm=disarm,
        disarm_what=what,
        login=" and login" if login else "",
    )
    line = (
        f"deadline: unless the installer fetches {url}{' and someone logs in over SSH' if login else ''} within "
        f"{minutes:g} min, it reboots through the firmware into this system (--deadline); partitioning disarms it"
    )
    return cpio.archive([(DEADLINE_SCRIPT, cpio.REGULAR, script.encode())]), line


def with_panic(cmdline: str, seconds: int) -> tuple[str, int | None, str]:
    """`cmdline` with panic=`seconds` added unless it sets panic= already; the seconds added (or None) and why.

    Words after a lone `--` are init's arguments, not the kernel's: panic= goes before them.
    """
    words = cmdline.split()
    kernel_words = words[: words.index("--")] if "--" in words else words
    own = [word for word in kernel_words if word.startswith("panic=")]
    if own:
        return cmdline, None, f"{own[-1]}: the command line's own (kept; none added)"
    at = len(kernel_words)
    added = (
        " ".join([*words[:at], f"panic={seconds}", *words[at:]])
        if "--" in words
        else f"{cmdline} panic={seconds}".strip()  # the line as it was, its spacing kept
    )
    return (
        added,
        seconds,
        f"panic={seconds}: a panic in the next kernel resets through the firmware after {seconds} s",
    )


def plan_way_back(plan, args: argparse.Namespace, root: str = "/", scratch: str | None = None, *, linux: bool = True):
    """`plan` with its path (kexec or firmware) and way back: panic= on its command line, where needed a
    one-shot entry named, and for netboot (`scratch` given: where to make files) the installer's deadline.
    `linux`: the plan boots a Linux kernel, which takes panic= (memdisk, booting a whole image, does not).
    Nothing outside `scratch` is written here: `arm` (or `firmware.boot`) does that right before the boot."""
    from . import firmware

    via, why_via = firmware.choose_via(args.via, root)
    lines = [f"path: {via} ({why_via})"]
    if via == firmware.FIRMWARE:
        lines.append(firmware.describe(plan, root))
    if not args.way_back:
        plan.way_back = WayBack(None, (*lines, "none (--no-way-back): a failed boot needs a human"), via=via)
        return plan
    if linux:
        plan.cmdline, added, why = with_panic(plan.cmdline, args.panic)
    else:
        added, why = None, "no panic=: memdisk boots a whole image, whose own system decides what a panic does"
    lines.append(why)
    one_shot = None
    if via == firmware.FIRMWARE:
        # GRUB's one next_entry starts the staged entry; a reset after it boots GRUB's default.
        lines.append("after the staged boot, a reset (a panic, the deadline) boots GRUB's default entry")
    else:
        one_shot, next_boot = firmware_next_boot(root, _release_of(plan.kernel.path))
        lines.append(next_boot)
    if scratch is not None:
        from .plan.model import PlannedFile

        archive, line = deadline_archive(plan.kernel.origin, args.deadline, bool(args.ssh_key))
        made = os.path.join(scratch, "deadline.cpio")
        write_atomically(made, archive)
        plan.initrds = [
            *plan.initrds,
            PlannedFile(
                made,
                "kexec-bin's way back (the installer's deadline)",
                f"made here: a cpio archive holding /{DEADLINE_SCRIPT}",
                temporary=True,
            ),
        ]
        lines.append(line)
    plan.way_back = WayBack(added, tuple(lines), one_shot, via=via)
    return plan


def _release_of(kernel: str) -> str | None:
    from .image import identify

    try:
        image = identify(kernel)
    except OSError:
        return None
    return image.release if image else None


def firmware_next_boot(root: str = "/", next_release: str | None = None) -> tuple[OneShot | None, str]:
    """What the firmware's next boot starts, and the one-shot entry that makes it the running kernel when needed."""
    from . import bootloader
    from .kernel import Kernel

    release = Kernel(root).release()
    notes: list[str] = []
    try:
        menu = bootloader.grub_menu(root)  # read once: for the default here, for the running kernel's entry below
        default = next(
            iter((bootloader.grub_default(root, notes, menu) if menu else []) or bootloader.bls_default(root, notes)),
            None,
        )
    except bootloader.BootError:
        menu, default = None, None
    if default is None:
        return None, "the firmware's next boot: no GRUB or Boot Loader Specification menu found to check"
    if default.release == release:
        return None, f"the firmware's next boot: the running kernel {release} ({default.source})"
    config = menu[0] if menu else None
    entry = _grub_entry_for(menu[1].entries, release) if menu and release else None
    if entry is None or config is None or release is None:
        return None, (
            f"the firmware's next boot: {default.release or default.kernel} ({default.source}), not the running "
            f"kernel {release}, and no GRUB entry for {release} to boot once instead: a reset may boot the new "
            "kernel again"
        )
    grubenv = os.path.join(os.path.dirname(config), "grubenv")
    return OneShot(grubenv, entry, release, next_release), (
        f"one-shot GRUB entry {entry!r} (the running kernel {release}) in {grubenv}'s next_entry, as grub-reboot "
        f"sets it: a reset boots {release} once, not the default {default.release}; the new system clears it "
        f"when it reaches multi-user.target ({CONFIRM_UNIT}, installed for one boot)"
    )


def _grub_entry_for(entries: list[Entry], release: str) -> str | None:
    """GRUB's name for the first non-recovery entry that boots `release`: ids (else titles) of its
    submenus and itself, joined by '>' (as grub-reboot takes it)."""
    for entry in entries:
        if any("recovery" in (title + (entry_id or "")).lower() for _, title, entry_id in entry.steps):
            continue
        if entry.kernel and os.path.basename(entry.kernel) == f"vmlinuz-{release}":
            return ">".join(entry_id or title for _, title, entry_id in entry.steps)
    return None


def arm(way_back: WayBack | None, root: str = "/", out: TextIO | None = None) -> None:
    """Write what the plan's way back named: the one-shot entry and the unit that clears it. Right before the boot."""
    if way_back is None or way_back.one_shot is None:
        return
    one_shot = way_back.one_shot
    from .bootloader import inside

    grubenv = inside(root, one_shot.grubenv)
    set_grubenv(grubenv, {"next_entry": one_shot.entry})
    install_confirm(root, one_shot.grubenv, one_shot.entry, only_kernel=one_shot.next_release)
    if out is not None:
        print(f"way back armed: next_entry={one_shot.entry} in {one_shot.grubenv}", file=out)
