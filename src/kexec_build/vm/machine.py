"""A QEMU guest driven over its serial console, read against deadlines.

Everything the console prints goes to a log file as it arrives. A failed wait raises
`GuestError` with the last 50 console lines and the log's path.
"""

from __future__ import annotations

import codecs
import io
import re
import shlex
import subprocess
import threading
import time
from pathlib import Path
from typing import NoReturn

from .. import atomic
from ..errors import GuestError

# Terminal control sequences (CSI, charset selection, two-byte escapes) and the other control
# characters a full-screen program such as the Debian installer writes instead of newlines.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[@-Z\\-_=>])|[\x00-\x08\x0b-\x1f\x7f]")
# A trailing escape that may be completed by the next chunk is held back until it is.
_OPEN_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|[()])?$")
TAIL_LINES = 50


class Machine:
    """A running QEMU whose serial console is this process's pipe."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.command = command
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = log.open("wb")
        self._log_file.write(f"# {shlex.join(command)}\n".encode())
        self._text = ""
        self._pending = ""
        self._position = 0
        self._changed = threading.Condition()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert isinstance(self._process.stdout, io.BufferedReader)  # stdout=PIPE, buffered: read1 returns what is there
        while chunk := self._process.stdout.read1(65536):
            self._log_file.write(chunk)
            self._log_file.flush()
            text = self._pending + self._decoder.decode(chunk)
            held = _OPEN_ESCAPE.search(text[-32:])
            cut = len(text) - len(held.group()) if held and held.group() else len(text)
            self._pending = text[cut:]
            with self._changed:
                self._text += _ESCAPE.sub("", text[:cut].replace("\r", ""))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def expect(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait for `pattern` (a regex) in the console text after the previous match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = regex.search(self._text, self._position)
                if match:
                    self._position = match.end()
                    return match
                if self._process.poll() is not None and not self._reader.is_alive():
                    self.fail(f"QEMU exited ({self._process.returncode}) before {pattern!r} appeared")
                left = deadline - time.monotonic()
                if left <= 0:
                    self.fail(f"{pattern!r} did not appear within {timeout:.0f} s")
                self._changed.wait(min(left, 1.0))

    def send(self, line: str) -> None:
        """Type one line on the console."""
        assert self._process.stdin is not None
        self._process.stdin.write(line.encode() + b"\n")
        self._process.stdin.flush()

    def keys(self, keys: str) -> None:
        """Type `keys` as they are, no newline added: a menu's arrow keys ("\\x1b[B") and Enter ("\\r")."""
        assert self._process.stdin is not None
        self._process.stdin.write(keys.encode())
        self._process.stdin.flush()

    def run(self, command: str, timeout: float = 120) -> str:
        """Run a shell command in the guest's init loop; return its output, fail on a non-zero status."""
        self.send(f'{command} 2>&1; echo "VMTEST-RC=$?"')
        match = self.expect(r"(?s)(.*?)VMTEST-RC=(\d+)\n", timeout)
        output, status = match.group(1).strip(), int(match.group(2))
        if status:
            self.fail(f"`{command}` exited with status {status}:\n{output}")
        return output

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last console lines, escape codes removed."""
        with self._changed:
            return "\n".join(self._text.splitlines()[-lines:])

    def fail(self, reason: str) -> NoReturn:
        """Raise `GuestError` with `reason`, the console's last lines and the log's path."""
        raise GuestError(f"{reason}\n--- last {TAIL_LINES} console lines (full log: {self.log}) ---\n{self.tail()}")

    def close(self) -> None:
        """Stop QEMU and close the log."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._reader.join(timeout=10)
        self._log_file.close()


# Under a working KVM a kernel reaches its serial console in about a second.
KVM_PROBE_SECONDS = 15


def kvm_usable(kernel: Path, verdicts: Path) -> bool:
    """Whether /dev/kvm boots `kernel` (on some hosts it exists but hangs real guests).

    The probe is a timed boot to the kernel's first console line; its verdict is kept in
    `verdicts` for the rest of this host boot, so a hanging KVM costs the probe time once.
    """
    if not Path("/dev/kvm").exists():
        return False
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    verdict = verdicts / f"kvm-{boot_id}"
    if verdict.exists():
        return verdict.read_text() == "usable"
    command = [
        "qemu-system-x86_64",
        "-accel",
        "kvm",
        "-m",
        "256",
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 panic=-1",
    ]
    probe = Machine(command, verdicts / "kvm-probe.log")
    try:
        probe.expect("Linux version", KVM_PROBE_SECONDS)
        usable = True
    except GuestError:
        usable = False
    finally:
        probe.close()
    atomic.write_text(verdict, "usable" if usable else "hangs")
    return usable
