"""Hostile kernel trees for the fuzz test, and the worker that drives the doctor and the API through them.

`python -m tests.runtime.fuzz_hostile MATERIAL WORK FIRST COUNT PATH_DIR` builds the trees FIRST to
FIRST+COUNT-1 (tree N from random seed N, so a failure is reproduced by its number) and, in this one
process, runs `kexec-bin doctor --json --root TREE` (even trees; `kexec-bin doctor --root TREE`
on odd ones) and `kexec_bin.load(<a kernel that does not exist>, root=TREE)` on each. It prints
one JSON line per case: wall-clock and CPU seconds, peak memory (VmHWM, reset before the case),
and what went wrong.

A case may use 2 s of CPU. The wall clock catches hangs (a FIFO opened for reading waits forever):
an alarm ends a case after HANG_SECONDS, far above 2 s so that a machine busy with other work
(these run beside compilers and VMs) cannot end a healthy case.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import signal
import stat
import sys
import time
from pathlib import Path

HANG_SECONDS = 20.0
RELEASE = "6.1.0-fuzz-amd64"
# Every file the doctor reads, with the material a healthy machine has there ("" = the kind decides).
EVIDENCE = {
    "proc/config.gz": "config.gz",
    f"boot/config-{RELEASE}": "config",
    f"lib/modules/{RELEASE}/config": "config",
    "proc/sys/kernel/osrelease": RELEASE + "\n",
    "proc/sys/kernel/kexec_load_disabled": "0\n",
    "proc/sys/kernel/kexec_load_limit_reboot": "-1\n",
    "proc/sys/kernel/kexec_load_limit_panic": "-1\n",
    "proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz ro quiet crashkernel=256M\n",
    "proc/self/status": "status",
    "proc/self/uid_map": "         0          0 4294967295\n",
    "proc/xen/capabilities": "control_d\n",
    "sys/kernel/kexec_loaded": "0\n",
    "sys/kernel/kexec_crash_loaded": "0\n",
    "sys/kernel/kexec_crash_size": "268435456\n",
    "sys/kernel/security/lockdown": "[none] integrity confidentiality\n",
    "sys/hypervisor/type": "xen\n",
    "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d0-aae4-00a0c904b13c": b"\x06\x00\x00\x00\x01",
    "sys/firmware/efi/efivars/SetupMode-8be4df61-93ca-11d0-aae4-00a0c904b13c": b"\x06\x00\x00\x00\x00",
}
KINDS = (
    "healthy",
    "absent",
    "random bytes",
    "truncated",
    "empty",
    "fifo",
    "symlink loop",
    "symlink out",
    "sparse huge",
    "folder",
    "gzip of random",
    "gzip bomb",
    "device",
    "parent is a file",
    "symlink chain",
    "hostile text",
)
HOSTILE_TEXTS = (
    b"../../../../etc",
    b"/etc/passwd",
    b"x/../../y",
    b"..",
    b"\x1b[2J\x1b]0;owned\x07",
    b"[",
    b"]",
    b"none [integrity",
    b"CapEff:\tzz\n",
    b"CapEff:\n",
    b"9" * 5000,
    b"-1\n",
    b"1\n",
    b"\xff\xfe\n",
    b"CONFIG_KEXEC=y",
    b"# CONFIG_KEXEC is not set\n",
    b"\0\0\0\0\0",
)


MATERIAL = ("config.gz", "config", "status", "bomb.gz")


def material(folder: Path) -> dict:
    """The shared contents by name: files in `folder` (written by the test) that trees hard-link or copy."""
    return {name: folder / name for name in MATERIAL}


def build_tree(root: Path, seed: int, stuff: dict) -> None:
    """Tree `seed`: each evidence file healthy or, with some chance, one of the hostile kinds."""
    rng = random.Random(seed)
    hostility = rng.choice((0.1, 0.3, 0.6, 1.0))
    root.mkdir(parents=True)
    for relative, healthy in EVIDENCE.items():
        kind = rng.choice(KINDS) if rng.random() < hostility else "healthy"
        _plant(root, root / relative, kind, healthy, rng, stuff)


def _healthy_bytes(healthy, stuff) -> bytes:
    if isinstance(healthy, bytes):
        return healthy
    return stuff[healthy].read_bytes() if healthy in stuff else healthy.encode()


def _plant(root: Path, path: Path, kind: str, healthy, rng: random.Random, stuff: dict) -> None:
    if kind == "absent":
        return
    try:
        if kind == "parent is a file":
            path.parent.parent.mkdir(parents=True, exist_ok=True)
            if not path.parent.exists():
                path.parent.write_bytes(b"a file where a folder should be")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        return  # an earlier file took the place of a folder on the way
    if path.exists() or path.is_symlink():
        return
    if kind == "healthy" and isinstance(healthy, str) and healthy in stuff:
        os.link(stuff[healthy], path)
    elif kind == "healthy":
        path.write_bytes(_healthy_bytes(healthy, stuff))
    elif kind == "random bytes":
        path.write_bytes(rng.randbytes(rng.choice((1, 7, 100, 5000, 70000))))
    elif kind == "truncated":
        data = _healthy_bytes(healthy, stuff)
        path.write_bytes(data[: rng.randrange(len(data) + 1)])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink loop":
        path.symlink_to(path.name)
    elif kind == "symlink out":
        path.symlink_to(rng.choice(("/dev/zero", "/dev/urandom", "/etc/passwd", "/proc/self/status", "/")))
    elif kind == "sparse huge":
        with open(path, "wb") as file:
            file.truncate(rng.choice((1 << 30, 1 << 40)))
    elif kind == "folder":
        path.mkdir()
    elif kind == "gzip of random":
        import gzip

        path.write_bytes(gzip.compress(rng.randbytes(rng.choice((10, 4096)))))
    elif kind == "gzip bomb":
        os.link(stuff["bomb.gz"], path)
    elif kind == "device" and os.geteuid() == 0:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, rng.choice((3, 5, 8))))  # null, zero, random
    elif kind == "symlink chain":
        target = path.with_name(path.name + ".real")
        target.write_bytes(_healthy_bytes(healthy, stuff))
        middle = path.with_name(path.name + ".middle")
        middle.symlink_to(target.name)
        path.symlink_to(middle.name)
    elif kind == "hostile text":
        path.write_bytes(rng.choice(HOSTILE_TEXTS))


class CaseTimeout(Exception):
    """A case ran past its wall-clock cap."""


def _alarm(signum, frame):
    raise CaseTimeout(f"still running after {HANG_SECONDS} s: a hang")


def cpu_seconds() -> float:
    """User and system time of this process and the programs it ran (the harmless kexec)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def peak_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear:  # "5": reset the peak resident set size (Linux >= 4.0)
        clear.write("5")


def run_case(tree: Path, as_json: bool) -> list[str]:
    """Drive the doctor (as JSON or as text) and the API's load through `tree`; what went wrong, if anything."""
    import kexec_bin
    from kexec_bin.cli import main

    problems = []
    args = ["doctor", *(["--json"] if as_json else []), "--root", str(tree)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    if code not in (0, 1) or err.getvalue():
        problems.append(f"{' '.join(args[:-1])}: exit {code}: {err.getvalue().strip()}")
    if as_json:
        try:
            json.loads(out.getvalue())
        except ValueError as error:
            problems.append(f"doctor --json printed no JSON: {error}")
    try:
        kexec_bin.load(f"/nonexistent/fuzz/{tree.name}/vmlinuz", root=str(tree))
    except (kexec_bin.BlockedError, kexec_bin.KexecError):
        pass  # refused by the preflight, or the (harmless) kexec failed: both are answers
    except kexec_bin.KexecBinError as error:
        problems.append(f"load: {type(error).__name__}: {error}")
    except Exception as error:
        problems.append(f"load raised {type(error).__name__}: {error}")
    return problems


def main() -> int:
    stuff_dir, work, first, count, kexec_dir = sys.argv[1:6]
    os.environ["PATH"] = kexec_dir  # a harmless kexec: nothing can load whatever the preflight says
    os.environ.pop("KEXEC_BIN_PREFER", None)
    stuff = material(Path(stuff_dir))
    signal.signal(signal.SIGALRM, _alarm)
    for seed in range(int(first), int(first) + int(count)):
        tree = Path(work) / f"tree-{seed}"
        build_tree(tree, seed, stuff)
        reset_peak()
        cpu = cpu_seconds()
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        try:
            problems = run_case(tree, as_json=seed % 2 == 0)
        except CaseTimeout as error:
            problems = [str(error)]
        except Exception as error:
            problems = [f"traceback: {type(error).__name__}: {error}"]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        print(
            json.dumps(
                {"seed": seed, "seconds": seconds, "cpu_seconds": cpu, "peak_mib": peak_mib(), "problems": problems}
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
