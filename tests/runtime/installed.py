"""kexec_bin laid out as pip installs a wheel, and its `kexec` script run as a real process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pytest

from kexec_bin.resolve import SYSTEM_DIRS
from kexec_build import recipes
from kexec_build.commands import run
from kexec_build.hook import build_info_module

SOURCE = Path(__file__).resolve().parents[2] / "src" / "kexec_bin"
SCRIPTS = SOURCE.parent / "scripts"
# The host's kexec-tools, which the `kexec` script searches after PATH.
HOST_KEXEC = next((f"{folder}/kexec" for folder in SYSTEM_DIRS if os.path.exists(f"{folder}/kexec")), None)
without_host_kexec = pytest.mark.skipif(
    HOST_KEXEC is not None,
    reason=f"needs a host without kexec-tools: {HOST_KEXEC} would be chosen before the bundled kexec under test",
)


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
    run(sys.executable, "-m", "venv", "--without-pip", venv)
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


def version_of(program: Path, **env: str) -> str:
    """What `program --version` prints first when run directly: tells which program `kexec` became."""
    result = subprocess.run([str(program), "--version"], capture_output=True, text=True, env={**os.environ, **env})
    return result.stdout.splitlines()[0]


def run_kexec(installed: Install, *args: str, path: Sequence[Path] = (), **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `kexec` script with PATH = `path` folders, then the scripts folder, then /usr/bin:/bin."""
    environ = {
        "PATH": os.pathsep.join([*map(str, path), str(installed.scripts), "/usr/bin", "/bin"]),
        "KEXEC_BIN_NO_CHECK": "1",
        **env,
    }
    return subprocess.run([str(installed.kexec), *args], capture_output=True, text=True, env=environ)


def system_kexec(folder: Path, script: str) -> Path:
    """A folder holding a `kexec` shell script, standing in for the host's kexec-tools."""
    folder.mkdir()
    program = folder / "kexec"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(0o755)
    return folder


def copied_system_kexec(folder: Path, program: Path) -> Path:
    """A folder holding a copy of `program` (Debian's real kexec), standing in for the host's kexec-tools."""
    folder.mkdir()
    shutil.copy2(program, folder / "kexec")
    return folder


def powerless(folder: Path, program: Path, library_path: str = "") -> Path:
    """A folder holding a `kexec` that runs `program` without any capability (as root: bounding set
    emptied), so whatever the arguments say, it can neither load a kernel, reboot nor take an interface down."""
    folder.mkdir(parents=True)
    drop = "setpriv --bounding-set=-all --inh-caps=-all " if os.geteuid() == 0 else ""
    script = folder / "kexec"
    script.write_text(f'#!/bin/sh\nLD_LIBRARY_PATH={library_path} exec {drop}{program} "$@"\n')
    script.chmod(0o755)
    return folder
