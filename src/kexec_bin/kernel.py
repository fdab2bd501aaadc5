"""What the running kernel publishes about kexec, read from files under a root folder.

Each probe returns a `Reading`: the file it read (or would have read) and what it found, with
`value` None when the file is absent or unreadable, so "unknown" never passes for "no".
"""

from __future__ import annotations

import functools
import os

from .read import Tree

TYPE_CHECKING = False
if TYPE_CHECKING:  # the doctor runs in every `kexec --load`'s preflight: no `typing` at run time
    from typing import Any

# The EFI global-variable vendor GUID, under which SecureBoot and SetupMode live.
_EFI_GLOBAL = "8be4df61-93ca-11d0-aae4-00a0c904b13c"
CAP_SYS_BOOT = 22
# /proc/self/uid_map of the initial user namespace: every uid maps to itself.
_INITIAL_UID_MAP = ["0", "0", "4294967295"]
# Evidence is untrusted input: larger than these, a file is not what the kernel publishes, so unknown.
# A procfs or sysfs value is a few KiB at most (/proc/self/status ~1.5 KiB, /proc/cmdline <= 4 KiB on
# most CPUs); a kernel config is ~250 KiB (all options on: under 1 MiB), compressed or not.
SMALL_LIMIT = 64 * 1024
CONFIG_LIMIT = 8 * 1024 * 1024
# The selected lockdown mode can only be one of these (security/lockdown/lockdown.c).
_LOCKDOWN_MODES = ("none", "integrity", "confidentiality")


class Reading:
    """One file's evidence: its path as shown to the user and the value found, None if unknown."""

    __slots__ = ("path", "value")

    def __init__(self, path: str, value: object = None) -> None:
        self.path = path
        # Text, a flag, or the config's options, by probe: each check knows what its probe returns.
        self.value: Any = value

    def __repr__(self) -> str:
        return f"Reading({self.path!r}, {self.value!r})"


class Kernel:
    """The kernel seen through the files under `root` ("/" for this machine)."""

    def __init__(self, root: str = "/") -> None:
        self.tree = Tree(root)
        self.root = root

    def path(self, path: str) -> str:
        """Where `path` (as seen on the machine) is under root."""
        return self.tree.path(path)

    def _bytes(self, path: str, limit: int = SMALL_LIMIT) -> bytes | None:
        """The file's bytes, None when unknown; under a --root tree only files that resolve inside it."""
        return self.tree.read_capped(path, limit)

    def _read(self, path: str) -> str | None:
        data = self._bytes(path)
        return None if data is None else data.decode(errors="replace")

    def _stripped(self, path: str) -> Reading:
        """`path`'s text without surrounding whitespace; value None when absent or unreadable."""
        text = self._read(path)
        return Reading(self.path(path), text.strip() if text is not None else None)

    def exists(self, path: str) -> bool:
        """Whether `path` (as seen on the machine) exists under root."""
        return os.path.exists(self.path(path))

    def release(self) -> str | None:
        """`uname -r` of the kernel under root (only this machine's own when root is /); None if implausible."""
        text = self._read("/proc/sys/kernel/osrelease")
        release = text.strip() if text else (os.uname().release if self.root == "/" else None)
        # It names files (/boot/config-R, /lib/modules/R/config): one plain path component, or nothing.
        if not release or len(release) > 255 or "/" in release or release in (".", "..") or not release.isprintable():
            return None
        return release

    def config(self) -> Reading:
        """The kernel's build options {NAME: 'y'|'m'|'n'|value} from the first published config that parses.

        A config that is damaged, truncated mid-line, empty or not a config at all is skipped: value
        None (unknown) when none is left, and the path names what was found.
        """
        release = self.release()
        candidates = ["/proc/config.gz"]
        if release:
            candidates += [f"/boot/config-{release}", f"/lib/modules/{release}/config"]
        damaged = []
        for candidate in candidates:
            raw = self._bytes(candidate, CONFIG_LIMIT)
            if raw is None:
                if os.path.lexists(self.path(candidate)):
                    damaged.append(self.path(candidate))
                continue
            options = _options(raw, candidate.endswith(".gz"))
            if options is not None:
                return Reading(self.path(candidate), options)
            damaged.append(self.path(candidate))
        where = " or ".join(self.path(c) for c in candidates)
        return Reading(where + "".join(f" ({path}: not a readable kernel config)" for path in damaged))

    def sysfs_kexec(self) -> dict[str, Reading]:
        """kexec_loaded, kexec_crash_loaded, kexec_crash_size: they exist only with CONFIG_KEXEC_CORE."""
        return {
            name: self._stripped(f"/sys/kernel/{name}")
            for name in ("kexec_loaded", "kexec_crash_loaded", "kexec_crash_size")
        }

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
            selected, closed, _ = text[text.index("[") + 1 :].partition("]")
            mode = selected if closed and selected in _LOCKDOWN_MODES else None
        elif text is None and not self.exists(path) and self.securityfs_mounted():
            mode = "none"
        return Reading(self.path(path), mode)

    def securityfs_mounted(self) -> bool:
        """Whether securityfs is mounted at /sys/kernel/security (unmounted, the folder is empty)."""
        try:
            return bool(os.listdir(self.path("/sys/kernel/security")))
        except OSError:
            return False

    def efi(self) -> bool:
        """Whether the kernel was booted by EFI firmware."""
        return self.exists("/sys/firmware/efi")

    def efi_variable(self, name: str) -> Reading:
        """A one-byte EFI global variable (SecureBoot, SetupMode) as True/False, after its 4 attribute bytes."""
        path = f"/sys/firmware/efi/efivars/{name}-{_EFI_GLOBAL}"
        data = self._bytes(path)
        return Reading(self.path(path), data[4] == 1 if data is not None and len(data) == 5 else None)

    def capabilities(self) -> Reading:
        """Whether CAP_SYS_BOOT is in this process's effective set (/proc/self/status CapEff)."""
        text = self._read("/proc/self/status")
        value = None
        for line in (text or "").splitlines():
            words = line.split()
            if words[:1] == ["CapEff:"] and len(words) == 2 and _is_hex(words[1]):
                value = bool(int(words[1], 16) >> CAP_SYS_BOOT & 1)
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


@functools.lru_cache(maxsize=4)
def _options(raw: bytes, compressed: bool) -> dict | None:
    """The options of a config file's bytes, parsed once per process (the doctor and `doctor --kernel` both ask)."""
    text = _gunzip(raw, CONFIG_LIMIT) if compressed else raw
    return parse_config(text.decode(errors="replace")) if text is not None else None


def parse_config(text: str) -> dict | None:
    """A kernel .config as {NAME: value} without the CONFIG_ prefix ("is not set" becomes 'n').

    None when the text is not a kernel config: empty, no option at all, or a line that is neither
    an option nor a comment (random bytes, a file cut off in the middle of a line).
    """
    options = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            name, value = line[7:].split("=", 1)
            options[name] = value.strip('"')
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            options[line[9:-11]] = "n"
        elif line.strip() and not line.startswith("#"):
            return None
    return options or None


def _gunzip(data: bytes, limit: int) -> bytes | None:
    """The first gzip member of `data` inflated, None when damaged, truncated or larger than `limit`."""
    import zlib

    inflate = zlib.decompressobj(wbits=31)
    try:
        text = inflate.decompress(data, limit + 1)
    except zlib.error:
        return None
    return text if inflate.eof and len(text) <= limit else None


def _is_hex(word: str) -> bool:
    return 0 < len(word) <= 16 and all(c in "0123456789abcdefABCDEF" for c in word)
