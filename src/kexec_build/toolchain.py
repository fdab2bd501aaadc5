"""The compiler and libraries a target is built with."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolchainError
from .recipes import Recipes, Target


@dataclass(frozen=True)
class Toolchain:
    """A C compiler for one target, and the sysroot holding its static zlib and liblzma."""

    target: Target
    cc: str
    sysroot: Path | None

    def configure_env(self) -> dict[str, str]:
        """Variables for ./configure beyond what the pipeline sets itself (CFLAGS, LDFLAGS=-static)."""
        return {"CC": self.cc}

    def tool(self, name: str) -> str:
        """The binutils program `name` (e.g. 'strip') that matches the compiler."""
        return self.cc[: -len("gcc")] + name if self.cc.endswith("gcc") else name

    def compiler_version(self) -> str:
        """The first line of `cc --version`."""
        result = subprocess.run([self.cc, "--version"], capture_output=True, text=True)
        return result.stdout.splitlines()[0] if result.returncode == 0 and result.stdout else "unknown"

    def header(self, name: str) -> Path | None:
        """Where the compiler finds `name` (e.g. 'zlib.h'), or None."""
        result = subprocess.run([self.cc, "-H", "-E", "-x", "c", "-"], input=f"#include <{name}>\n",
                                capture_output=True, text=True, env=None)
        first = next((line for line in result.stderr.splitlines() if line.startswith(". ")), None)
        return Path(first[2:].strip()) if first else None

    def versions(self) -> dict[str, str]:
        """The versions of what gets linked in, read from the headers the compiler uses."""
        defines = {
            "zlib": ("zlib.h", r'#define ZLIB_VERSION "([^"]+)"'),
            "xz": ("lzma/version.h", r"#define LZMA_VERSION_(MAJOR|MINOR|PATCH) (\d+)"),
            "glibc": ("features.h", r"#define\s+__GLIBC(?:_MINOR)?__\s+(\d+)"),
        }
        found = {"compiler": self.compiler_version()}
        for library, (header, pattern) in defines.items():
            path = self.header(header)
            matches = re.findall(pattern, path.read_text()) if path else []
            if library == "xz":
                found[library] = ".".join(number for _, number in matches[:3])
            elif library == "glibc":
                found[library] = ".".join(matches[:2])
            else:
                found[library] = matches[0] if matches else ""
        return found

    def fingerprint(self) -> str:
        """What identifies this toolchain in the rebuild key: compiler and library versions."""
        return hashlib.sha256(repr(sorted(self.versions().items())).encode()).hexdigest()


def for_target(target: Target, recipes: Recipes) -> Toolchain:
    """The toolchain for `target`; raise `ToolchainError` naming what is missing and the fix."""
    if target != recipes.native_target():
        raise ToolchainError(f"cross-building for {target.name} is not available yet")
    cc = f"{target.triplet}-gcc" if shutil.which(f"{target.triplet}-gcc") else "gcc"
    if not shutil.which(cc):
        raise ToolchainError(
            f"no C compiler for {target.name}: install {' '.join(recipes.native_packages)} "
            f"(inv toolchain --arch {target.name})"
        )
    return Toolchain(target=target, cc=cc, sysroot=None)
