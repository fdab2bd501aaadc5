"""Realistic kernel trees from Debian's own files (the layout of an installed wheel is in `installed`)."""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from kexec_build import fetch, recipes
from kexec_build.testbed import iso_images
from kexec_build.testbed.debian_packages import unpacked
from tests.runtime.installed import system_kexec

# The Debian kexec links libxenctrl; these packages hold it and the libraries it pulls in.
XEN_LIBRARIES = (
    "libxenmisc4.17",
    "libxencall1",
    "libxendevicemodel1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxentoollog1",
    "libxentoolcore1",
)
EFI_GLOBAL = "8be4df61-93ca-11d0-aae4-00a0c904b13c"
CAP_SYS_BOOT_BIT = 1 << 22


@dataclass(frozen=True)
class DebianKernel:
    """Debian's amd64 kernel package, unpacked: its release, config text and vmlinuz."""

    release: str
    config: str
    vmlinuz: Path


@dataclass(frozen=True)
class DebianKexec:
    """Debian's kexec, unpacked; it runs with `library_path` as LD_LIBRARY_PATH."""

    path: Path
    library_path: str


@pytest.fixture(scope="session")
def debian_kernel() -> DebianKernel:
    boot = unpacked("linux-image-amd64") / "boot"
    (config,) = boot.glob("config-*")
    release = config.name.removeprefix("config-")
    return DebianKernel(release, config.read_text(), boot / f"vmlinuz-{release}")


@pytest.fixture(scope="session")
def debian_kexec() -> DebianKexec:
    libraries = [str(unpacked(package) / "usr/lib/x86_64-linux-gnu") for package in XEN_LIBRARIES]
    return DebianKexec(unpacked("kexec-tools") / "sbin/kexec", os.pathsep.join(libraries))


def set_options(config: str, **options: str) -> str:
    """The config text with each CONFIG_<name> set to its value ('n' writes "is not set")."""
    lines = [
        line
        for line in config.splitlines()
        if not any(line.startswith((f"CONFIG_{name}=", f"# CONFIG_{name} is not set")) for name in options)
    ]
    for name, value in options.items():
        lines.append(f"# CONFIG_{name} is not set" if value == "n" else f"CONFIG_{name}={value}")
    return "\n".join(lines) + "\n"


class Tree:
    """A root folder holding the procfs, sysfs and /boot files a kernel publishes about kexec."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, path: str, content: str | bytes) -> Path:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        return target

    def remove(self, path: str) -> None:
        target = self.root / path.lstrip("/")
        shutil.rmtree(target) if target.is_dir() else target.unlink()

    def set_config(self, config: str) -> None:
        self.write("/proc/config.gz", gzip.compress(config.encode()))

    def set_capability(self, held: bool) -> None:
        """Rewrite CapEff in the copy of this process's real /proc/self/status."""
        status = Path("/proc/self/status").read_text().splitlines()
        for index, line in enumerate(status):
            if line.startswith("CapEff:"):
                value = int(line.split()[1], 16)
                value = value | CAP_SYS_BOOT_BIT if held else value & ~CAP_SYS_BOOT_BIT
                status[index] = f"CapEff:\t{value:016x}"
        self.write("/proc/self/status", "\n".join(status) + "\n")

    def set_efi_variable(self, name: str, on: bool) -> None:
        # 4 attribute bytes (non-volatile, boot and runtime access), then the one-byte value.
        self.write(f"/sys/firmware/efi/efivars/{name}-{EFI_GLOBAL}", b"\x06\x00\x00\x00" + bytes([on]))


@pytest.fixture
def tree(tmp_path: Path, debian_kernel: DebianKernel) -> Tree:
    """A healthy root: Debian's config as /proc/config.gz, kexec files in sysfs, root privileges, no lockdown."""
    tree = Tree(tmp_path / "root")
    tree.set_config(debian_kernel.config)
    tree.write("/proc/sys/kernel/osrelease", debian_kernel.release + "\n")
    tree.write("/proc/sys/kernel/kexec_load_disabled", "0\n")
    tree.write(
        "/proc/cmdline",
        f"BOOT_IMAGE=/boot/vmlinuz-{debian_kernel.release} "
        "root=UUID=2f6b7bb5-6a0d-4d7c-9a59-6d1c8c6f2b0e ro quiet crashkernel=256M\n",
    )
    tree.set_capability(True)
    tree.write("/proc/self/uid_map", "         0          0 4294967295\n")
    tree.write("/sys/kernel/kexec_loaded", "0\n")
    tree.write("/sys/kernel/kexec_crash_loaded", "0\n")
    tree.write("/sys/kernel/kexec_crash_size", "268435456\n")
    tree.write("/sys/kernel/security/lockdown", "[none] integrity confidentiality\n")
    tree.set_efi_variable("SecureBoot", False)
    tree.set_efi_variable("SetupMode", False)
    return tree


@pytest.fixture
def recording_kexec(tmp_path, monkeypatch):
    """A system `kexec` that writes its arguments, one per line, to a file; returns that file."""
    record = tmp_path / "args"
    system = system_kexec(tmp_path / "sbin", f'printf "%s\\n" "$@" > {record}\n')
    monkeypatch.setenv("PATH", f"{system}:/usr/bin:/bin")
    return record


@pytest.fixture(scope="session")
def kexec_tools_headers() -> dict[str, str]:
    """kexec-tools' option tables as upstream ships them: kexec/kexec.h and every CPU's arch/options.h,
    read from the release's verified tarball (the cache, else a mirror)."""
    tarball = fetch.fetch(recipes.load().release(), mirrors=fetch.mirrors_from_env())
    headers = {}
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            name = member.name.split("/", 1)[-1]
            if name == "kexec/kexec.h" or (name.startswith("kexec/arch/") and name.endswith("/include/arch/options.h")):
                extracted = archive.extractfile(member)
                assert extracted is not None, f"{tarball}: {member.name} is not a regular file"
                headers[name] = extracted.read().decode()
    return headers


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """The folder of the images built once for a test module (skipped where they cannot be built)."""
    missing = iso_images.missing_tools()
    if missing:
        pytest.skip(missing)
    return tmp_path_factory.mktemp("images")
