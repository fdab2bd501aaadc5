"""Where the toolkit keeps things: the download cache, the build tree and dist/."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUILD_ENV = "KEXEC_BIN_BUILD"
DIST_ENV = "KEXEC_BIN_DIST"


def cache_dir() -> Path:
    """The download and toolchain cache: $KEXEC_BIN_CACHE, else $XDG_CACHE_HOME/kexec-bin."""
    if os.environ.get("KEXEC_BIN_CACHE"):
        return Path(os.environ["KEXEC_BIN_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kexec-bin"


def build_dir() -> Path:
    """The build tree: $KEXEC_BIN_BUILD, else build/ in the project."""
    return Path(os.environ.get(BUILD_ENV) or PROJECT_ROOT / "build")


def dist_dir() -> Path:
    """Where wheels, the sdist and SHA256SUMS are written: $KEXEC_BIN_DIST, else dist/ in the project."""
    return Path(os.environ.get(DIST_ENV) or PROJECT_ROOT / "dist")
