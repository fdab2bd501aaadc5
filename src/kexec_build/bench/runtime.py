"""`inv bench` rows for the runtime: what the installed `kexec` script adds to a bundled kexec run,
and what the check before a load and the doctor cost.

One venv, one machine, one minute: the script, a bare `python -c pass` of the same interpreter,
the bundled binary itself, a checked `kexec --load` and `kexec-bin doctor` run in turns, so the
ratios hold where absolute times do not. The load names a kernel that does not exist: whether the
check refuses it (exit 1) or the bundled kexec cannot open it, nothing is loaded; both paths pay for
the choice, the sha256 of the bundled binary and every check of the doctor.
"""

from __future__ import annotations

import gzip
import os
import statistics
import subprocess
from pathlib import Path

from ..errors import WheelError
from ..testbed import debian_packages
from ..testbed.trial import fresh_venv, native_wheel
from .measure import Row, timed

ROUNDS = 60
GOAL = 1.10
CHECKED_GOAL = 2.5
TRUST_GOAL = 3.0  # doctor --kernel reads and parses a whole kernel file besides every check of the doctor


def runtime_rows(work: Path) -> list[Row]:
    """`kexec --version` through the installed script against `python -c pass` and the binary run directly."""
    venv = fresh_venv(work / "venv", native_wheel(work / "dist"))
    # Debian's signed amd64 kernel (about 8 MiB), judged by a locked-down kernel that trusts Debian's CA.
    kernel = next((debian_packages.unpacked("linux-image-amd64") / "boot").glob("vmlinuz-*"))
    # The installed package (not one PYTHONPATH points at) and its bundled kexec, whatever the host has.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(KEXEC_BIN_PREFER="bundled", PATH=f"{venv.root / 'bin'}:/usr/bin:/bin")
    commands = {
        "script": [str(venv.script("kexec")), "--version"],
        "python": [str(venv.python), "-c", "pass"],
        "binary": [str(venv.bundled()), "--version"],
        "load": [str(venv.script("kexec")), "--load", str(work / "no-such-kernel")],
        "doctor": [str(venv.script("kexec-bin")), "doctor"],
        "trust": [
            str(venv.script("kexec-bin")),
            "doctor",
            "--kernel",
            str(kernel),
            "--root",
            str(locked_down(work, kernel)),
        ],
    }
    script_out, binary_out = (
        subprocess.run(commands[name], env=env, capture_output=True).stdout for name in ("script", "binary")
    )
    if script_out != binary_out:
        raise WheelError(f"`kexec --version` did not run the bundled kexec: {script_out!r}, expected {binary_out!r}")
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(ROUNDS):  # in turns, so a busy moment hits all three alike
        for name, command in commands.items():
            # A refused load and a doctor that finds kexec blocked exit 1: the time is what counts.
            times[name].append(timed(command, cwd=work, env=env, check=name not in ("load", "doctor")))
    script, python, binary, load, doctor, trust = (
        statistics.median(times[name]) for name in ("script", "python", "binary", "load", "doctor", "trust")
    )
    return [
        Row(
            "kexec --version (installed script) vs python -c pass, same venv",
            script,
            "s",
            f"ratio <= {GOAL}",
            script / python <= GOAL,
            python,
        ),
        Row(
            "kexec --version (installed script) vs the bundled kexec run directly",
            script,
            "s",
            "shown, no goal",
            True,
            binary,
        ),
        Row(
            "kexec --load (check + sha256 of the bundled kexec) vs python -c pass",
            load,
            "s",
            f"ratio <= {CHECKED_GOAL}",
            load / python <= CHECKED_GOAL,
            python,
        ),
        Row(
            "kexec-bin doctor vs python -c pass",
            doctor,
            "s",
            f"ratio <= {CHECKED_GOAL}",
            doctor / python <= CHECKED_GOAL,
            python,
        ),
        Row(
            f"kexec-bin doctor --kernel (Debian's signed kernel, {kernel.stat().st_size / (1 << 20):.1f} MiB, "
            "a locked-down tree) vs python -c pass",
            trust,
            "s",
            f"ratio <= {TRUST_GOAL}",
            trust / python <= TRUST_GOAL,
            python,
        ),
    ]


def locked_down(work: Path, kernel: Path) -> Path:
    """A --root tree of a Debian kernel booted with Secure Boot: its config, lockdown integrity, Debian's CA
    in /proc/keys, and this process's privileges, so `doctor --kernel` walks the whole signature check."""
    from ..vm import secure_boot

    root = work / "locked-down"
    config = next(kernel.parent.glob("config-*"))
    files = {
        "proc/config.gz": gzip.compress(config.read_bytes()),
        "proc/sys/kernel/osrelease": config.name.removeprefix("config-").encode() + b"\n",
        "sys/kernel/security/lockdown": b"none [integrity] confidentiality\n",
        "proc/keys": secure_boot.proc_keys_line(*secure_boot.DEBIAN_CA).encode() + b"\n",
        "proc/self/status": Path("/proc/self/status").read_bytes(),
        "proc/self/uid_map": Path("/proc/self/uid_map").read_bytes(),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root
