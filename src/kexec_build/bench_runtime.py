"""`inv bench` rows for the runtime: what the `kexec` console script adds to a bundled kexec run.

One venv, one machine, one minute: the script, a bare `python -c pass` of the same interpreter
and the bundled binary itself run in turns, so the ratios hold where absolute times do not.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from .bench import Row, timed
from .trial import fresh_venv, native_wheel

ROUNDS = 40
GOAL = 1.10


def runtime_rows(work: Path) -> list[Row]:
    """`kexec --version` through the console script against `python -c pass` and the binary run directly."""
    venv = fresh_venv(work / "venv", native_wheel(work / "dist"))
    # The bundled kexec, whatever the host has installed: that is the path being measured.
    env = {**os.environ, "KEXEC_BIN_PREFER": "bundled", "PATH": f"{venv.root / 'bin'}:/usr/bin:/bin"}
    commands = {
        "script": [str(venv.script("kexec")), "--version"],
        "python": [str(venv.python), "-c", "pass"],
        "binary": [str(venv.bundled()), "--version"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(ROUNDS):  # in turns, so a busy moment hits all three alike
        for name, command in commands.items():
            times[name].append(timed(command, cwd=work, env=env))
    script, python, binary = (statistics.median(times[name]) for name in ("script", "python", "binary"))
    return [
        Row("kexec --version (console script) vs python -c pass, same venv", script, "s",
            f"ratio <= {GOAL}", script / python <= GOAL, python),
        Row("kexec --version (console script) vs the bundled kexec run directly", script, "s",
            "shown, no goal", True, binary),
    ]
