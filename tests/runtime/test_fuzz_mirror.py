"""240 hostile mirror responses through `kexec-bin netboot debian --dry-run` (tests/runtime/fuzz_mirror.py):
no traceback, no internal error, one line per refusal with a documented status, no hang, and caps on
CPU time and memory per case.

A trickle is cut off by the download deadline, here 0.3 s through $KEXEC_BIN_DOWNLOAD_DEADLINE (far
above the milliseconds a healthy case takes), so the whole run takes seconds. Peak memory is the
worker's (it serves the mirror too), so its cap is looser than the 64 MiB a real pool-path plan is
held to (test_netboot_pool).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.runtime.measure import report_worst

CASES = 240
CAP_SECONDS, CAP_MIB = 2.0, 128
PROJECT = Path(__file__).resolve().parents[2]


def test_hostile_mirrors_are_refused_cleanly(tmp_path):
    worker = subprocess.run(
        [sys.executable, "-m", "tests.runtime.fuzz_mirror", str(tmp_path), "0", str(CASES)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=600,
        env={**os.environ, "PYTHONPATH": f"{PROJECT / 'src'}:{PROJECT}", "KEXEC_BIN_DOWNLOAD_DEADLINE": "0.3"},
    )
    assert worker.returncode == 0 and worker.stderr == "", worker.stderr
    cases = [json.loads(line) for line in worker.stdout.splitlines()]
    assert len(cases) == CASES
    assert [case for case in cases if case["problems"]] == []
    assert {case["status"] for case in cases if case["case"] == "healthy"} == {0}
    assert {case["status"] for case in cases if case["case"] == "inrelease by both"} == {0}
    refused = [case for case in cases if case["status"] != 0]
    assert len(refused) >= 200
    report_worst(cases, f"mirrors ({len(refused)} refused)", "case", CAP_SECONDS, CAP_MIB)
