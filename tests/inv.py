"""The project's invoke tasks, run as a user runs them: `python -m invoke` in the project folder."""

from __future__ import annotations

import subprocess
import sys

from kexec_build.paths import PROJECT_ROOT

INVOKE = (sys.executable, "-m", "invoke")


def inv(*args: str, **options) -> subprocess.CompletedProcess:
    """Run `inv <args>` in the project folder; its exit status and output, captured as text."""
    return subprocess.run([*INVOKE, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, **options)
