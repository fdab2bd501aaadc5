"""Read a guest's VGA text screen without OCR: QEMU's monitor dumps the text buffer at 0xB8000.

For guests whose last program talks only to the PC screen through the BIOS (memdisk, iPXE,
memory testers), not to the serial console. Start QEMU with `qemu_options(socket)`.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

TEXT_BUFFER = 0xB8000
COLUMNS, ROWS = 80, 25


def qemu_options(monitor: Path) -> list[str]:
    """A VGA card (the harness starts QEMU with -nodefaults) and a monitor on a Unix socket."""
    return ["-device", "VGA", "-monitor", f"unix:{monitor},server,nowait"]


def text(monitor: Path, scratch: Path) -> str:
    """The screen as 25 lines of text: each cell is a character byte and an attribute byte."""
    dump = scratch / "vga-text.bin"
    dump.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(monitor))
        # Quoted: the monitor reads `SIZE /path` as a division.
        connection.sendall(f'pmemsave {TEXT_BUFFER:#x} {COLUMNS * ROWS * 2} "{dump}"\n'.encode())
        deadline = time.monotonic() + 30
        while not (dump.exists() and dump.stat().st_size == COLUMNS * ROWS * 2) and time.monotonic() < deadline:
            time.sleep(0.2)
    cells = dump.read_bytes()[::2]
    return "\n".join(cells[row * COLUMNS : (row + 1) * COLUMNS].decode("cp437").rstrip() for row in range(ROWS))


def wait_for(monitor: Path, scratch: Path, wanted: str, timeout: float) -> str:
    """Poll the screen until `wanted` shows; return the screen, or raise with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        screen = text(monitor, scratch)
        if wanted in screen or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert wanted in screen, f"{wanted!r} not on the VGA screen within {timeout:.0f} s; it shows:\n{screen}"
    return screen
