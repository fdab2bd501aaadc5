"""What brings this machine back from a failed boot: the defaults every story command arms, and the
doctor's report of what this host has (panic, a one-shot entry, the installer's deadline, a watchdog)."""

from __future__ import annotations

import os

DEFAULT_PANIC_SECONDS = 30
DEFAULT_DEADLINE_MINUTES = 15


def protections(kernel):
    """The doctor's findings on what would bring this machine back from a failed boot (all informational)."""
    from .findings import INFO, Finding

    panic = kernel.sysctl("panic")
    yield Finding(
        "way back: panic",
        INFO,
        f"{panic.path}: {panic.value if panic.value is not None else 'unreadable'} (this kernel's own)",
        f"every story command adds panic={DEFAULT_PANIC_SECONDS} to the next kernel's command line "
        "(--panic, --no-way-back): a panic resets through the firmware",
    )
    grub = next((path for path in ("/boot/grub/grubenv", "/boot/grub2/grubenv") if kernel.exists(path)), None)
    grub_menu = next((path for path in ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg") if kernel.exists(path)), None)
    if grub_menu:
        where = grub or os.path.join(os.path.dirname(grub_menu), "grubenv")
        meaning = (
            f"GRUB: a one-shot next_entry in {where} sends the firmware's next boot back to the running kernel "
            "when the default is another; --via firmware can boot a plan's files once through GRUB"
        )
        yield Finding("way back: one-shot entry", INFO, kernel.path(grub_menu), meaning)
    else:
        bls = next((path for path in ("/boot/loader/entries", "/efi/loader/entries") if kernel.exists(path)), None)
        yield Finding(
            "way back: one-shot entry",
            INFO,
            kernel.path(bls) if bls else kernel.path("/boot/grub/grub.cfg") + ": absent",
            "no GRUB menu: kexec-bin sets no one-shot entry (Boot Loader Specification entries are not driven yet); "
            "after a panic the firmware boots its default entry, and --via firmware is refused",
        )
    yield Finding(
        "way back: deadline",
        INFO,
        "netboot only",
        f"netboot gives the installer a deadline (--deadline, default {DEFAULT_DEADLINE_MINUTES} min): without a "
        "working network (and, with --ssh-key, a login) it reboots through the firmware into this system",
    )
    watchdogs = sorted(name for name in _listing(kernel.path("/sys/class/watchdog")) if name.startswith("watchdog"))
    identity = [kernel._read(f"/sys/class/watchdog/{name}/identity") for name in watchdogs]
    stop = kernel._read("/sys/module/watchdog/parameters/stop_on_reboot")
    evidence = ", ".join(f"{name} ({(text or '?').strip()})" for name, text in zip(watchdogs, identity))
    yield Finding(
        "way back: watchdog",
        INFO,
        (evidence or kernel.path("/sys/class/watchdog") + ": none")
        + (f"; watchdog.stop_on_reboot={stop.strip()}" if stop is not None else ""),
        "kexec-bin arms no watchdog: a driver that stops on reboot (the watchdog core's default for most) is "
        "stopped by kexec too, unless this kernel booted with watchdog.stop_on_reboot=0; a kernel that hangs "
        "without panicking needs a power cycle"
        if watchdogs
        else "no watchdog: a kernel that hangs without panicking needs a power cycle",
    )


def _listing(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []
