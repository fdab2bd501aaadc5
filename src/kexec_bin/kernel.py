"""What the running kernel publishes about kexec, read from files under a root folder.

Each probe returns a `Reading`: the file it read (or would have read) and what it found, with
`value` None when the file is absent or unreadable, so "unknown" never passes for "no".
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass

# The EFI global-variable vendor GUID, under which SecureBoot and SetupMode live.
_EFI_GLOBAL = "8be4df61-93ca-11d0-aae4-00a0c904b13c"
CAP_SYS_BOOT = 22
# /proc/self/uid_map of the initial user namespace: every uid maps to itself.
_INITIAL_UID_MAP = ["0", "0", "4294967295"]


@dataclass(frozen=True)
class Reading:
    """One file's evidence: its path as shown to the user and the value found, None if unknown."""

    path: str
    value: object = None


class Kernel:
    """The kernel seen through the files under `root` ("/" for this machine)."""

    def __init__(self, root: str = "/") -> None:
        self.root = root

    def path(self, path: str) -> str:
        """Where `path` (as seen on the machine) is under root."""
        return path if self.root == "/" else os.path.join(self.root, path.lstrip("/"))

    def _read(self, path: str) -> str | None:
        try:
            with open(self.path(path), "rb") as file:
                return file.read().decode(errors="replace")
        except OSError:  # absent, or root-only (lockdown, efivars): unknown
            return None

    def _stripped(self, path: str) -> Reading:
        """`path`'s text without surrounding whitespace; value None when absent or unreadable."""
        text = self._read(path)
        return Reading(self.path(path), text.strip() if text is not None else None)

    def exists(self, path: str) -> bool:
        """Whether `path` (as seen on the machine) exists under root."""
        return os.path.exists(self.path(path))

    def release(self) -> str | None:
        """`uname -r` of the kernel under root (only this machine's own when root is /)."""
        text = self._read("/proc/sys/kernel/osrelease")
        if text:
            return text.strip()
        return os.uname().release if self.root == "/" else None

    def config(self) -> Reading:
        """The kernel's build options {NAME: 'y'|'m'|'n'|value} from the first published config."""
        release = self.release()
        candidates = ["/proc/config.gz"]
        if release:
            candidates += [f"/boot/config-{release}", f"/lib/modules/{release}/config"]
        for candidate in candidates:
            try:
                with open(self.path(candidate), "rb") as file:
                    raw = file.read()
                text = (gzip.decompress(raw) if candidate.endswith(".gz") else raw).decode(errors="replace")
            except (OSError, EOFError, zlib.error):  # absent, or a damaged config.gz: try the next
                continue
            return Reading(self.path(candidate), parse_config(text))
        return Reading(" or ".join(self.path(c) for c in candidates))

    def sysfs_kexec(self) -> dict[str, Reading]:
        """kexec_loaded, kexec_crash_loaded, kexec_crash_size: they exist only with CONFIG_KEXEC_CORE."""
        return {name: self._stripped(f"/sys/kernel/{name}")
                for name in ("kexec_loaded", "kexec_crash_loaded", "kexec_crash_size")}

    def sysfs_mounted(self) -> bool:
        """Whether /sys/kernel is there at all: without it a missing kexec file proves nothing."""
        return self.exists("/sys/kernel")

    def cmdline(self) -> Reading:
        return self._stripped("/proc/cmdline")

    def sysctl(self, name: str) -> Reading:
        """A /proc/sys/kernel value such as kexec_load_disabled, as text."""
        return self._stripped(f"/proc/sys/kernel/{name}")

    def lockdown(self) -> Reading:
        """The selected lockdown mode ('none', 'integrity', 'confidentiality'), from "none [integrity] ...".

        None when unknown: unreadable (root only), or absent while securityfs is not mounted. With
        securityfs mounted and no lockdown file, the kernel has no lockdown LSM: 'none'.
        """
        path = "/sys/kernel/security/lockdown"
        text = self._read(path)
        mode = None
        if text and "[" in text:
            mode = text[text.index("[") + 1:text.index("]")]
        elif text is None and not self.exists(path) and self._securityfs_mounted():
            mode = "none"
        return Reading(self.path(path), mode)

    def _securityfs_mounted(self) -> bool:
        try:
            return bool(os.listdir(self.path("/sys/kernel/security")))
        except OSError:
            return False

    def efi(self) -> bool:
        """Whether the kernel was booted by EFI firmware."""
        return self.exists("/sys/firmware/efi")

    def efi_variable(self, name: str) -> Reading:
        """A one-byte EFI global variable (SecureBoot, SetupMode) as True/False, after its 4 attribute bytes."""
        path = self.path(f"/sys/firmware/efi/efivars/{name}-{_EFI_GLOBAL}")
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError:
            return Reading(path)
        return Reading(path, data[4] == 1 if len(data) >= 5 else None)

    def capabilities(self) -> Reading:
        """Whether CAP_SYS_BOOT is in this process's effective set (/proc/self/status CapEff)."""
        text = self._read("/proc/self/status")
        value = None
        for line in (text or "").splitlines():
            if line.startswith("CapEff:"):
                value = bool(int(line.split()[1], 16) >> CAP_SYS_BOOT & 1)
        return Reading(self.path("/proc/self/status"), value)

    def initial_user_namespace(self) -> Reading:
        """Whether this process is in the initial user namespace (not a container's own)."""
        text = self._read("/proc/self/uid_map")
        value = None if text is None else text.split() == _INITIAL_UID_MAP
        return Reading(self.path("/proc/self/uid_map"), value)

    def xen(self) -> Reading:
        """Whether the kernel runs on Xen: 'dom0' (it controls the host), 'domU', or False."""
        text = self._read("/proc/xen/capabilities")
        if text is not None:
            return Reading(self.path("/proc/xen/capabilities"), "dom0" if "control_d" in text else "domU")
        hypervisor = self._read("/sys/hypervisor/type")
        if hypervisor is not None and hypervisor.strip() == "xen":
            return Reading(self.path("/sys/hypervisor/type"), "domU")
        return Reading(self.path("/proc/xen"), "domU" if self.exists("/proc/xen") else False)


def parse_config(text: str) -> dict[str, str]:
    """A kernel .config as {NAME: value} without the CONFIG_ prefix; "is not set" becomes 'n'."""
    options = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            name, value = line[7:].split("=", 1)
            options[name] = value.strip('"')
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            options[line[9:-11]] = "n"
    return options
