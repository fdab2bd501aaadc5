"""`inv bench` rows for the runtime: what the installed `kexec` script adds to a bundled kexec run.

One venv, one machine, one minute: the script, a bare `python -c pass` of the same interpreter
and the bundled binary itself run in turns, so the ratios hold where absolute times do not.
"""

from __future__ import annotations

import os
import statistics
import subprocess
from pathlib import Path

from ..errors import WheelError
from ..trial import fresh_venv, native_wheel
from .measure import Row, timed

ROUNDS = 60
GOAL = 1.10


def runtime_rows(work: Path) -> list[Row]:
    """`kexec --version` through the installed script against `python -c pass` and the binary run directly."""
    venv = fresh_venv(work / "venv", native_wheel(work / "dist"))
    # The installed package (not one PYTHONPATH points at) and its bundled kexec, whatever the host has.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(KEXEC_BIN_PREFER="bundled", PATH=f"{venv.root / 'bin'}:/usr/bin:/bin")
    commands = {
        "script": [str(venv.script("kexec")), "--version"],
        "python": [str(venv.python), "-c", "pass"],
        "binary": [str(venv.bundled()), "--version"],
    }
    outputs = {name: subprocess.run(commands[name], env=env, capture_output=True).stdout for name in ("script", "binary")}
    if outputs["script"] != outputs["binary"]:
        raise WheelError(f"`kexec --version` did not run the bundled kexec: {outputs['script']!r}, expected {outputs['binary']!r}")
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(ROUNDS):  # in turns, so a busy moment hits all three alike
        for name, command in commands.items():
            times[name].append(timed(command, cwd=work, env=env))
    script, python, binary = (statistics.median(times[name]) for name in ("script", "python", "binary"))
    return [
        Row("kexec --version (installed script) vs python -c pass, same venv", script, "s",
            f"ratio <= {GOAL}", script / python <= GOAL, python),
        Row("kexec --version (installed script) vs the bundled kexec run directly", script, "s",
            "shown, no goal", True, binary),
    ]
