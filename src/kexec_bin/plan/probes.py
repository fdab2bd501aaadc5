"""What the plans ask of the machine being inspected: memory, consoles, whether systemd runs.

`root` is that machine's file tree ("/" for this one, a folder under `--root`). Every file is read
through `read.Tree`, the doctor's reader: capped, never waiting on a FIFO or a device, never
following a link out of the tree. A probe that cannot tell answers None (or nothing), never hangs.
"""

from __future__ import annotations

from ..errors import PlanError
from ..read import Tree
from .model import parameter

# procfs and sysfs files are small; anything larger is not what it claims to be.
_LIMIT = 1 << 20


def available_memory(root: str = "/") -> int | None:
    """MemAvailable from /proc/meminfo, in bytes; None when the kernel does not publish it."""
    text = _text(root, "/proc/meminfo")
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == "MemAvailable":
            try:
                return int(value.split()[0]) * 1024
            except (ValueError, IndexError):
                return None
    return None


def systemd_runs(root: str = "/") -> bool:
    """Whether systemd is PID 1 (sd_booted()'s test: /run/systemd/system exists)."""
    import os

    tree = Tree(root)
    path = tree.path("/run/systemd/system")
    return tree.inside(path) and os.path.isdir(path)


def console_parameters(spec: str, root: str = "/") -> tuple[list[str], str]:
    """The `console=` parameters for the next kernel from `--console` (auto, none, DEV[,SPEED]), and why.

    auto keeps the running kernel's consoles: its `console=` parameters in order (the last one owns
    /dev/console), else the devices in /sys/class/tty/console/active.
    """
    if spec == "none":
        return [], "console: none (--console none)"
    if spec != "auto":
        device = spec[len("/dev/") :] if spec.startswith("/dev/") else spec
        if not device or "/" in device:
            raise PlanError(f"--console {spec!r}: give a device name such as ttyS0 or ttyS0,115200, or auto, or none")
        return [parameter("console", device, "--console")], f"console {device}: --console"
    given = [word for word in _text(root, "/proc/cmdline").split() if word.startswith("console=")]
    if given:
        return given, f"{' '.join(given)}: the running kernel's command line (/proc/cmdline)"
    active = _text(root, "/sys/class/tty/console/active").split()
    if active:
        return [
            f"console={device}" for device in active
        ], f"console {' '.join(active)}: the running kernel's consoles (/sys/class/tty/console/active)"
    return [], "console: none found (no console= in /proc/cmdline, no /sys/class/tty/console/active)"


def mounts() -> list[list[str]]:
    """This machine's mounts (/proc/self/mounts), one list of fields each; none when unreadable."""
    return [line.split() for line in _text("/", "/proc/self/mounts").splitlines()]


def _text(root: str, path: str) -> str:
    """The file's text (as seen on the machine under `root`), or "" when it cannot be used."""
    data = Tree(root).read_capped(path, _LIMIT)
    return "" if data is None else data.decode("utf-8", "replace")
