"""Atomic writes: a file the toolkit writes appears whole or not at all."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` by a temporary file beside it (named per process), then a rename."""
    return write_bytes(path, text.encode())


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` by a temporary file beside it (named per process), then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.write_bytes(data)
    os.replace(partial, path)
    return path


def copy_file(source: Path, path: Path) -> Path:
    """Copy `source` to `path` by a temporary file beside it (named per process), then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    shutil.copyfile(source, partial)
    os.replace(partial, path)
    return path
