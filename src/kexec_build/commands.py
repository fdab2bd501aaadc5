"""Running the host's programs and reporting progress: the toolkit's one run-or-raise and its `Log`."""

from __future__ import annotations

import subprocess
from typing import Any, Callable

from .errors import BuildError

# Where a step's progress lines go: print by default, the backend's display inside hatchling.
Log = Callable[[str], None]
# How many of a failed command's last output lines its error shows.
TAIL_LINES = 8


def quiet(line: str) -> None:
    """A `Log` that drops progress lines; a failure still raises with its own message."""


def run(
    *command: object, error: type[BuildError] = BuildError, failure: str | None = None, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Run `command` (each part passed through `str`) with its output captured as text.

    Return the finished process; if it exits non-zero, raise `error` with `failure` (default: the
    command and its exit status) and the last lines of its error output (else its output).
    """
    argv = [str(part) for part in command]
    result = subprocess.run(argv, capture_output=True, text=True, **options)
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()[-TAIL_LINES:]
        headline = failure or f"`{' '.join(argv)}` failed (exit {result.returncode})"
        raise error(f"{headline}:\n" + "\n".join(output))
    return result
