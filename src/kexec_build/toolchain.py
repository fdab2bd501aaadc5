"""The compiler and libraries a target is built with, and what the host must install for them.

A native build uses the host's gcc and its static zlib and liblzma. A cross build uses
Debian's cross gcc with its C library (`libc6-dev-<arch>-cross`), a sysroot in the cache
holding the target's own static zlib and liblzma (see `sysroot`), and qemu-user to run
the result.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from . import sysroot as sysroots
from .commands import Log, run
from .errors import ToolchainError
from .recipes import Recipes, Target

# Every cross-built binary is run under qemu-user as its final check; this package has them all.
EMULATOR_PACKAGE = "qemu-user-static"
# One #include per library whose version goes into the SBOM; `cc -E -dM` prints their macros.
_VERSION_HEADERS = "#include <zlib.h>\n#include <lzma.h>\n#include <features.h>\n"
PROBE_SOURCE = Path(__file__).with_name("sysroot_probe.c")


@dataclass(frozen=True)
class Toolchain:
    """A C compiler for one target, and the sysroot holding its static zlib and liblzma.

    `sysroot` is None for a native build, which uses the host's own libraries.
    """

    target: Target
    cc: str
    sysroot: Path | None

    @property
    def cross(self) -> bool:
        """Whether the binaries this makes are for another CPU than the host's."""
        return self.sysroot is not None

    def emulator(self) -> list[str]:
        """The command prefix that runs this toolchain's binaries here ([] natively)."""
        return [self.target.qemu] if self.cross else []

    def include_dirs(self) -> list[Path]:
        """The sysroot's header folders (none natively)."""
        if self.sysroot is None:
            return []
        common = self.sysroot / "usr/include"
        return [common] + [common / lib.name for lib in self.lib_dirs() if (common / lib.name).is_dir()]

    def lib_dirs(self) -> list[Path]:
        """The sysroot's multiarch library folders, e.g. usr/lib/aarch64-linux-gnu (none natively)."""
        if self.sysroot is None:
            return []
        return sorted({archive.parent for archive in self.sysroot.glob("usr/lib/*/*.a")})

    def cppflags(self) -> list[str]:
        """Preprocessor options that find the sysroot's headers."""
        return [f"-I{folder}" for folder in self.include_dirs()]

    def ldflags(self) -> list[str]:
        """Linker options that find the sysroot's static libraries."""
        return [f"-L{folder}" for folder in self.lib_dirs()]

    def configure_env(self) -> dict[str, str]:
        """Variables for ./configure beyond what the pipeline sets itself (CFLAGS, LDFLAGS=-static)."""
        env = {"CC": self.cc}
        if self.sysroot is not None:
            env["CPPFLAGS"] = " ".join(self.cppflags())
            env["LDFLAGS"] = " ".join(self.ldflags())
        return env

    def tool(self, name: str) -> str:
        """The binutils program `name` (e.g. 'strip') that matches the compiler."""
        return self.cc[: -len("gcc")] + name if self.cc.endswith("gcc") else name

    def compiler_version(self) -> str:
        """The first line of `cc --version`."""
        result = subprocess.run([self.cc, "--version"], capture_output=True, text=True)
        return result.stdout.splitlines()[0] if result.returncode == 0 and result.stdout else "unknown"

    def versions(self) -> dict[str, str]:
        """The compiler and the versions of zlib, xz (liblzma) and glibc it links, from their headers."""
        return dict(self._versions)

    @functools.cached_property
    def _versions(self) -> dict[str, str]:
        result = subprocess.run(
            [self.cc, *self.cppflags(), "-E", "-dM", "-x", "c", "-"],
            input=_VERSION_HEADERS,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ToolchainError(
                f"{self.cc} cannot find the zlib, liblzma or C library headers for {self.target.name}: "
                f"{result.stderr.strip()[-400:]}; run `inv toolchain --arch {self.target.name}`"
            )
        macros = dict(re.findall(r"^#define (\w+) (.*)$", result.stdout, re.M))
        return {
            "compiler": self.compiler_version(),
            "zlib": macros["ZLIB_VERSION"].strip('"'),
            "xz": ".".join(macros[f"LZMA_VERSION_{part}"] for part in ("MAJOR", "MINOR", "PATCH")),
            "glibc": f"{macros['__GLIBC__']}.{macros['__GLIBC_MINOR__']}",
        }

    def fingerprint(self) -> str:
        """What identifies this toolchain in the rebuild key: compiler, library versions, sysroot packages."""
        parts = sorted(self.versions().items())
        if self.sysroot is not None:
            parts.append(("sysroot", sysroots.verified_manifest(self.sysroot, self.target)))
        return hashlib.sha256(repr(parts).encode()).hexdigest()


def for_target(target: Target, recipe_set: Recipes) -> Toolchain:
    """The toolchain for `target`; raise `ToolchainError` naming what is missing and the fix."""
    return for_targets([target], recipe_set)[target]


def for_targets(targets: Sequence[Target], recipe_set: Recipes) -> dict[Target, Toolchain]:
    """The toolchains for `targets`; raise one `ToolchainError` naming everything missing and the fix."""
    found, missing = {}, {}
    for target in targets:
        toolchain, problems = _look_up(target, recipe_set)
        if problems:
            missing[target.name] = problems
        else:
            found[target] = toolchain
    if missing:
        listing = "\n".join(f"  {name}: {'; '.join(problems)}" for name, problems in missing.items())
        raise ToolchainError(
            f"no toolchain for {', '.join(missing)}:\n{listing}\n"
            f"get them with: inv toolchain --arch {','.join(missing)}"
        )
    return found


def _look_up(target: Target, recipe_set: Recipes) -> tuple[Toolchain, list[str]]:
    """The toolchain `target` would use, and what of it is missing (cheap: no process is started)."""
    if target == recipe_set.native_target():
        cc = f"{target.triplet}-gcc" if shutil.which(f"{target.triplet}-gcc") else "gcc"
        problems = [] if shutil.which(cc) else [f"no C compiler (packages {', '.join(recipe_set.native_packages)})"]
        return Toolchain(target=target, cc=cc, sysroot=None), problems
    cc = f"{target.triplet}-gcc"
    root = sysroots.path(target)
    problems = []
    if not shutil.which(cc):
        problems.append(f"no {cc} (package {_package(target, 'gcc-')})")
    if not (Path("/usr") / target.triplet / "lib/libc.a").is_file():
        problems.append(
            f"no static C library /usr/{target.triplet}/lib/libc.a (package {_package(target, 'libc6-dev-')})"
        )
    if not sysroots.finished(root):
        problems.append(f"no sysroot with static zlib and liblzma in {root}")
    if not shutil.which(target.qemu):
        problems.append(f"no {target.qemu} to run the binary (package {EMULATOR_PACKAGE})")
    return Toolchain(target=target, cc=cc, sysroot=root), problems


def host_packages(target: Target, recipe_set: Recipes) -> tuple[str, ...]:
    """The Debian packages the host needs to build (and run) `target`'s binary."""
    if target == recipe_set.native_target():
        return recipe_set.native_packages
    return (*target.packages, EMULATOR_PACKAGE)


def missing_packages(packages: Iterable[str]) -> list[str]:
    """Those of `packages` that dpkg does not list as installed."""
    wanted = list(dict.fromkeys(packages))
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *wanted], capture_output=True, text=True
    )
    installed = {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed")}
    return [package for package in wanted if package not in installed]


def install_command(packages: Sequence[str]) -> list[str]:
    """The apt-get command that installs `packages` and only them (recommends pull in foreign extras)."""
    return ["apt-get", "install", "-y", "--no-install-recommends", *packages]


def provision(
    targets: Sequence[Target], recipe_set: Recipes, *, as_root: bool | None = None, log: Log = print
) -> dict[Target, Toolchain]:
    """Install the host packages `targets` need (root only) and build their sysroots; idempotent."""
    missing = missing_packages(package for target in targets for package in host_packages(target, recipe_set))
    if missing:
        command = install_command(missing)
        if not (os.geteuid() == 0 if as_root is None else as_root):
            raise ToolchainError(
                f"missing packages: {' '.join(missing)}; as root, run:\n"
                f"  sudo apt-get update\n  sudo {' '.join(command)}\nthen run this command again"
            )
        log(f"toolchain: installing {' '.join(missing)}")
        run(
            *command,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            error=ToolchainError,
            failure=f"`{' '.join(command)}` failed (if a package was not found, run `apt-get update` first)",
        )
    else:
        log(f"toolchain: host packages already installed for {', '.join(t.name for t in targets)}")
    for target in targets:
        if target == recipe_set.native_target():
            log(f"toolchain: {target.name} is native: {prove(for_target(target, recipe_set))}")
        else:
            cc = _look_up(target, recipe_set)[0].cc
            sysroots.ensure(target, packages=recipe_set.sysroot_packages, log=log, prove=_sysroot_proof(target, cc))
    return for_targets(targets, recipe_set)


def _sysroot_proof(target: Target, cc: str) -> sysroots.Prove:
    """How `sysroot.ensure` proves a candidate sysroot for `target`: `prove` with `cc` linking against it."""
    return lambda root: prove(Toolchain(target=target, cc=cc, sysroot=root))


def prove(toolchain: Toolchain) -> str:
    """Link a static program using all of zlib and liblzma, run it, and return what it printed.

    Raise `ToolchainError` unless it links, runs and reports the versions the headers declare.
    """
    with tempfile.TemporaryDirectory(prefix="kexec-bin-probe-") as scratch:
        program = Path(scratch) / "probe"
        compile_ = subprocess.run(
            [
                toolchain.cc,
                "-static",
                "-O2",
                *toolchain.cppflags(),
                str(PROBE_SOURCE),
                "-o",
                str(program),
                *toolchain.ldflags(),
                "-Wl,--whole-archive",
                "-llzma",
                "-lz",
                "-Wl,--no-whole-archive",
            ],
            capture_output=True,
            text=True,
        )
        if compile_.returncode != 0:
            raise ToolchainError(
                f"a static program using zlib and liblzma does not link for "
                f"{toolchain.target.name}:\n{compile_.stderr.strip()[-1500:]}"
            )
        ran = subprocess.run([*toolchain.emulator(), str(program)], capture_output=True, text=True, timeout=60)
    printed = ran.stdout.strip()
    versions = toolchain.versions()
    expected = f"zlib {versions['zlib']} lzma {versions['xz']}"
    if ran.returncode != 0 or printed != expected:
        raise ToolchainError(
            f"the {toolchain.target.name} probe printed {printed or ran.stderr.strip()!r} "
            f"(exit {ran.returncode}), expected {expected!r}"
        )
    return printed


def _package(target: Target, prefix: str) -> str:
    """The package of `target`'s recipe whose name starts with `prefix` (all of them if none does)."""
    return next((package for package in target.packages if package.startswith(prefix)), " ".join(target.packages))
