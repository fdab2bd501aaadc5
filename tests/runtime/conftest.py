"""Realistic kernel trees from Debian's own files, and kexec_bin laid out as an installed wheel would be."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from kexec_build import fetch, recipes
from kexec_build.debian_packages import unpacked
from kexec_build.hook import build_info_module

SOURCE = Path(__file__).resolve().parents[2] / "src" / "kexec_bin"
SCRIPTS = SOURCE.parent / "scripts"
# The Debian kexec links libxenctrl; these packages hold it and the libraries it pulls in.
XEN_LIBRARIES = ("libxenmisc4.17", "libxencall1", "libxendevicemodel1", "libxenevtchn1",
                 "libxenforeignmemory1", "libxengnttab1", "libxentoollog1", "libxentoolcore1")
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
    lines = [line for line in config.splitlines()
             if not any(line.startswith((f"CONFIG_{name}=", f"# CONFIG_{name} is not set")) for name in options)]
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
    tree.write("/proc/cmdline", f"BOOT_IMAGE=/boot/vmlinuz-{debian_kernel.release} "
                                "root=UUID=2f6b7bb5-6a0d-4d7c-9a59-6d1c8c6f2b0e ro quiet crashkernel=256M\n")
    tree.set_capability(True)
    tree.write("/proc/self/uid_map", "         0          0 4294967295\n")
    tree.write("/sys/kernel/kexec_loaded", "0\n")
    tree.write("/sys/kernel/kexec_crash_loaded", "0\n")
    tree.write("/sys/kernel/kexec_crash_size", "268435456\n")
    tree.write("/sys/kernel/security/lockdown", "[none] integrity confidentiality\n")
    tree.set_efi_variable("SecureBoot", False)
    tree.set_efi_variable("SetupMode", False)
    return tree


@dataclass(frozen=True)
class Install:
    """kexec_bin installed into a fresh venv as pip lays out a wheel: package, binary and both commands."""

    venv: Path
    site: Path
    bundled: Path

    @property
    def scripts(self) -> Path:
        return self.venv / "bin"

    @property
    def kexec(self) -> Path:
        return self.scripts / "kexec"

    @property
    def kexec_bin(self) -> Path:
        return self.scripts / "kexec-bin"


def install(folder: Path, binary: Path | None, *, target: str = "x86_64") -> Install:
    """Install the package with `binary` as its bundled kexec for `target`, with the build info the build writes.

    `binary` None installs neither the binary nor its build info, as in a source checkout.
    """
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    package = site / "kexec_bin"
    shutil.copytree(SOURCE, package, ignore=shutil.ignore_patterns("__pycache__", "_build_info.py", "bin"))
    bundled = package / "bin" / "kexec"
    if binary is not None:
        bundled.parent.mkdir()
        shutil.copy2(binary, bundled)
        recipe_set = recipes.load()
        info = build_info_module(recipe_set.target(target), recipe_set.release(), bundled)
        (package / "_build_info.py").write_text(info)
    python = venv / "bin" / "python"
    # The installers point a shipped script's shebang at the environment's Python.
    for name in ("kexec", "kexec-bin"):
        script = venv / "bin" / name
        script.write_text(f"#!{python}\n" + (SCRIPTS / name).read_text().split("\n", 1)[1])
        script.chmod(0o755)
    return Install(venv, site, bundled)


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
                headers[name] = archive.extractfile(member).read().decode()
    return headers


def powerless(folder: Path, program: Path, library_path: str = "") -> Path:
    """A folder holding a `kexec` that runs `program` without any capability (as root: bounding set
    emptied), so whatever the arguments say, it can neither load a kernel, reboot nor take an interface down."""
    folder.mkdir(parents=True)
    drop = "setpriv --bounding-set=-all --inh-caps=-all " if os.geteuid() == 0 else ""
    script = folder / "kexec"
    script.write_text(f'#!/bin/sh\nLD_LIBRARY_PATH={library_path} exec {drop}{program} "$@"\n')
    script.chmod(0o755)
    return folder


@dataclass(frozen=True)
class Measured:
    """A finished process: status, output, wall-clock and CPU seconds and peak memory (ru_maxrss) in MiB."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    peak_mib: float


def run_measured(command: list[str], *, timeout: float, env: dict | None = None) -> Measured:
    """Run `command` (through tests/runtime/measure.py, for its own peak memory); kill it after `timeout`
    seconds (returncode then -SIGKILL, seconds the time it had)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        measure = [sys.executable, "-m", "tests.runtime.measure", str(report), *command]
        started = time.perf_counter()
        process = subprocess.Popen(measure, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                   env=env, cwd=SOURCE.parents[1])
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            return Measured(-signal.SIGKILL, stdout.decode(errors="replace"), stderr.decode(errors="replace"),
                            time.perf_counter() - started, 0.0, 0.0)
        figures = json.loads(report.read_text())
        return Measured(figures["returncode"], stdout.decode(errors="replace"), stderr.decode(errors="replace"),
                        figures["seconds"], figures["cpu_seconds"], figures["peak_mib"])
