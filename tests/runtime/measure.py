"""`run_measured(COMMAND)`: a command's status, output, wall-clock and CPU seconds and peak memory.

It runs `python -m tests.runtime.measure REPORT COMMAND...`, which runs COMMAND, then writes its
exit status, seconds and peak memory to REPORT as JSON.

Linux folds the memory of the process that forks into the child's ru_maxrss, so a command started
straight from pytest (hundreds of MiB) would seem that large; started from this small interpreter,
its figure is its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def main() -> int:
    report, command = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(report, "w") as file:
        json.dump(
            {
                "returncode": code,
                "seconds": seconds,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "peak_mib": usage.ru_maxrss / 1024,
            },
            file,
        )
    return 0


@dataclass(frozen=True)
class Measured:
    """A finished process: status, output, wall-clock and CPU seconds and peak memory (ru_maxrss) in MiB."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    peak_mib: float


def run_measured(command: list[str], *, timeout: float, env: dict | None = None) -> Measured:
    """Run `command` (through tests/runtime/measure.py, for its own peak memory); kill it after `timeout`
    seconds (returncode then -SIGKILL, seconds the time it had)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        measure = [sys.executable, "-m", "tests.runtime.measure", str(report), *command]
        started = time.perf_counter()
        process = subprocess.Popen(
            measure, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=env, cwd=PROJECT
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            return Measured(
                -signal.SIGKILL,
                stdout.decode(errors="replace"),
                stderr.decode(errors="replace"),
                time.perf_counter() - started,
                0.0,
                0.0,
            )
        figures = json.loads(report.read_text())
        return Measured(
            figures["returncode"],
            stdout.decode(errors="replace"),
            stderr.decode(errors="replace"),
            figures["seconds"],
            figures["cpu_seconds"],
            figures["peak_mib"],
        )


if __name__ == "__main__":
    sys.exit(main())


def report_worst(cases: list[dict], what: str, name: str, cap_seconds: float, cap_mib: float) -> None:
    """Print a fuzz run's worst cases (CPU, wall clock, memory; each case named by its `name` field)
    and assert that none passed the caps."""
    slowest = max(cases, key=lambda case: case["cpu_seconds"])
    largest = max(cases, key=lambda case: case["peak_mib"])
    print(
        f"\n{len(cases)} {what}: most CPU {slowest['cpu_seconds']:.3f} s ({name} {slowest[name]}), "
        f"longest wall clock {max(case['seconds'] for case in cases):.3f} s, "
        f"largest {largest['peak_mib']:.1f} MiB ({name} {largest[name]})"
    )
    assert slowest["cpu_seconds"] < cap_seconds and largest["peak_mib"] < cap_mib
