"""`run_measured(COMMAND)`: a command's status, output, wall-clock and CPU seconds and peak memory,
measured by the small interpreter in `measured_run.py` (which says why it is needed); and
`report_worst`, the fuzz tests' summary of their cases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
MEASURED_RUN = Path(__file__).with_name("measured_run.py")


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
    """Run `command` (through measured_run.py, for its own peak memory); kill it after `timeout` seconds
    (returncode then -SIGKILL, seconds the time it had)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report"
        measure = [sys.executable, "-S", str(MEASURED_RUN), str(report), *command]
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
        returncode, seconds, cpu_seconds, peak_mib = report.read_text().split()
        return Measured(
            int(returncode),
            stdout.decode(errors="replace"),
            stderr.decode(errors="replace"),
            float(seconds),
            float(cpu_seconds),
            float(peak_mib),
        )


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
