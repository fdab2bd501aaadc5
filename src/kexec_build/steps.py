"""The build steps: patch, configure, verify config.h, make, strip, run.

Each step writes its own log; a step's output is shown only when it fails, as the step's
name, the log's path and its last lines.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from .errors import CheckError, StepError
from .recipes import Release
from .toolchain import Toolchain

TAIL_LINES = 25
# What configure must have found: it silently drops a library it cannot link statically.
REQUIRED_DEFINES = {"HAVE_LIBZ": "zlib", "HAVE_LIBLZMA": "lzma"}


class Steps:
    """Runs commands as numbered, logged steps in one build's log folder."""

    def __init__(self, logs: Path, label: str) -> None:
        self.logs = logs
        self.label = label
        self.count = 0
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)

    def run(
        self,
        name: str,
        command: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        stdin: Path | None = None,
    ) -> Path:
        """Run `command`, its output going to the step's log; raise `StepError` if it fails."""
        self.count += 1
        log = self.logs / f"{self.count:02d}-{name}.log"
        with open(log, "w") as output, open(stdin or os.devnull) as source:
            output.write(f"$ {' '.join(command)}\n")
            output.flush()
            try:
                code = subprocess.run(
                    command, cwd=cwd, env=env, stdin=source, stdout=output, stderr=subprocess.STDOUT
                ).returncode
            except FileNotFoundError:
                output.write(f"{command[0]}: command not found\n")
                code = 127
        if code != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-TAIL_LINES:])
            raise StepError(f"{self.label}: step '{name}' failed (exit {code}); log: {log}\n{tail}")
        return log


def apply_patches(runner: Steps, source: Path, patches: Sequence[Path]) -> None:
    """Apply the release's patches in order."""
    for patch in patches:
        runner.run(f"patch-{patch.stem}", ["patch", "-p1", "--forward", "--batch"], cwd=source, stdin=patch)


def configure(runner: Steps, source: Path, release: Release, toolchain: Toolchain) -> None:
    """Run ./configure for a static build; LDFLAGS=-static goes here, never to make (it breaks purgatory)."""
    extra = toolchain.configure_env()
    # The build folder's path must not reach the binary: byte-identical builds anywhere.
    prefix_map = f"-ffile-prefix-map={source}=kexec-tools-{release.version}"
    env = {
        **os.environ,
        **extra,
        "CFLAGS": f"-O2 {prefix_map}",
        "LDFLAGS": f"-static {extra.get('LDFLAGS', '')}".strip(),
    }
    runner.run(
        "configure",
        ["./configure", f"--host={toolchain.target.triplet}", *release.configure_flags],
        cwd=source,
        env=env,
    )


def verify_config(source: Path, label: str, *, arch: str) -> dict[str, bool]:
    """Raise `StepError` unless configure enabled zlib and lzma; return what it enabled."""
    header = source / "include" / "config.h"
    text = header.read_text()
    enabled = {
        library: bool(re.search(rf"^#define {define} 1$", text, re.M)) for define, library in REQUIRED_DEFINES.items()
    }
    missing = [library for library, on in enabled.items() if not on]
    if missing:
        raise StepError(
            f"{label}: configure dropped {' and '.join(missing)} ({header} lacks "
            f"{', '.join(d for d, lib in REQUIRED_DEFINES.items() if lib in missing)}): the static "
            f"library is missing for this target; run `inv toolchain --arch {arch}`"
        )
    return enabled


def make(runner: Steps, source: Path, jobs: int) -> Path:
    """Run make; return the built kexec."""
    runner.run("make", ["make", f"-j{jobs}"], cwd=source)
    return source / "build" / "sbin" / "kexec"


def strip(runner: Steps, binary: Path, toolchain: Toolchain, output: Path) -> None:
    """Write a stripped copy of `binary` to `output` (via a temporary name, then a rename)."""
    partial = output.with_name(f".{output.name}.part")
    runner.run("strip", [toolchain.tool("strip"), "--strip-all", "-o", str(partial), str(binary)], cwd=binary.parent)
    os.replace(partial, output)


def check_runs(binary: Path, release: Release, prefix: list[str]) -> None:
    """Raise `CheckError` unless the binary prints its version and its help lists --load and --exec."""
    version = subprocess.run([*prefix, str(binary), "--version"], capture_output=True, text=True, timeout=60)
    expected = f"kexec-tools {release.version}"
    if expected not in version.stdout + version.stderr:
        raise CheckError(
            f"{binary} --version printed {(version.stdout + version.stderr).strip()!r}, expected {expected!r}"
        )
    usage = subprocess.run([*prefix, str(binary), "--help"], capture_output=True, text=True, timeout=60)
    for option in ("--load", "--exec"):
        if option not in usage.stdout + usage.stderr:
            raise CheckError(f"{binary} --help does not list {option}")
