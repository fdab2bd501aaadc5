"""A thousand hostile kernel trees through the doctor and the API's load, a thousand hostile boot menus, ISO images
and /boot trees through `kexec-bin iso` and `kexec-bin reboot`, and fuzzed `kexec` command lines through the
installed script: no traceback, JSON that parses, no hang, no case over 2 s (of CPU) or 100 MiB.

Nothing can load or boot: the only kexec on PATH is a shell script that exits, and the kernels do not exist.
Time is CPU time: the wall clock of a case on a machine shared with compilers and VMs says little, so it
is only reported, and caught as a hang far above the cap (see fuzz_hostile.HANG_SECONDS).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from kexec_bin.errors import EXIT_BLOCKED, EXIT_UNAVAILABLE, EXIT_USAGE
from kexec_bin.shim import LONG_OPTIONS, SHORT_OPTIONS
from kexec_build.testbed import iso_images
from tests.runtime.fuzz_hostile import build_tree, material
from tests.runtime.installed import SOURCE, install
from tests.runtime.measure import report_worst, run_measured

TREES = 1000
MENU_CASES = 1000
WORKERS = 2
CAP_SECONDS, CAP_MIB = 2.0, 100
PROJECT = SOURCE.parents[1]
ENV = {**os.environ, "PYTHONPATH": str(SOURCE.parent)}


def harmless_kexec(folder: Path) -> Path:
    folder.mkdir()
    (folder / "kexec").write_text("#!/bin/sh\nexit 0\n")
    (folder / "kexec").chmod(0o755)
    return folder


def write_material(folder: Path, config: str) -> Path:
    folder.mkdir()
    (folder / "config").write_text(config)
    (folder / "config.gz").write_bytes(gzip.compress(config.encode()))
    (folder / "status").write_text(Path("/proc/self/status").read_text())
    with gzip.open(folder / "bomb.gz", "wb") as bomb:  # 256 MiB of zeros
        for _ in range(256):
            bomb.write(bytes(1 << 20))
    return folder


@pytest.fixture
def scratch(tmp_path) -> Iterator[Path]:
    """Where a fuzz writes its thousand trees: on tmpfs (/dev/shm) when the machine has one, removed
    afterwards. On this machine's disk, creating some 20,000 small files and folders cost 7 to 14 s of
    system time, more than the cases themselves; on tmpfs, about one second. The trees are the same."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="kexec-bin-fuzz-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_thousand_hostile_trees(scratch, debian_kernel):
    stuff = write_material(scratch / "material", debian_kernel.config)
    run_workers([str(stuff)], scratch, TREES, "trees")


def test_a_thousand_hostile_menus_images_and_boot_trees(scratch):
    # Half generated GRUB and syslinux menus read as an image's, a quarter one real image with bytes changed in
    # its descriptors and directories, a quarter /boot trees under `reboot --root` (see fuzz_hostile.story_case).
    missing = iso_images.missing_tools()
    if missing:
        pytest.skip(missing)
    files: dict[str, str | bytes] = {
        "boot/grub/grub.cfg": 'set default=1\nsource /boot/grub/a.cfg\nmenuentry "L" --id l {\n linux /live/vmlinuz'
        " boot=live\n initrd /live/initrd.img\n}\n",
        "boot/grub/a.cfg": 'menuentry "A" {\n linux /live/vmlinuz\n}\n',
        "isolinux/isolinux.cfg": "include a.cfg\nlabel x\n kernel /live/vmlinuz\n",
        "isolinux/a.cfg": "label a\n kernel /live/vmlinuz\n append initrd=/live/initrd.img\n",
        "live/vmlinuz": b"kernel",
        "live/initrd.img": b"initrd",
    }
    image = iso_images.config_image(scratch, "fuzz", files)
    run_workers(["menus", str(image)], scratch, MENU_CASES, "menus, images and /boot trees")


def run_workers(material: list[str], folder: Path, count: int, what: str) -> None:
    """`count` cases from fuzz_hostile in WORKERS processes: none with a problem, none over the caps."""
    kexec_dir = harmless_kexec(folder / "harmless")
    share = count // WORKERS
    fuzz = [sys.executable, "-m", "tests.runtime.fuzz_hostile", *material, str(folder / "work")]
    (folder / "work").mkdir()
    workers = [
        subprocess.Popen(
            [*fuzz, str(index * share), str(share), str(kexec_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=PROJECT,
            env=ENV,
        )
        for index in range(WORKERS)
    ]
    cases, errors = [], []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=600)
        cases += [json.loads(line) for line in stdout.splitlines()]
        errors += [stderr] if stderr or worker.returncode else []
    assert errors == []
    assert len(cases) == count
    assert [case for case in cases if case["problems"]] == []
    report_worst(cases, what, "seed", CAP_SECONDS, CAP_MIB)


def test_hostile_trees_through_real_doctor_processes(tmp_path, debian_kernel):
    # The same trees as whole `kexec-bin` processes: the interpreter's own exit (flushing) included.
    stuff = material(write_material(tmp_path / "material", debian_kernel.config))
    kexec_dir = harmless_kexec(tmp_path / "harmless")
    trees = []
    for seed in range(30):
        trees.append(tmp_path / "trees" / f"tree-{seed}")
        build_tree(trees[-1], seed, stuff)

    def doctor(tree):
        return run_measured(
            [sys.executable, "-m", "kexec_bin", "doctor", "--json", "--root", str(tree)],
            timeout=30,
            env={**ENV, "PATH": str(kexec_dir)},
        )

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(doctor, trees))
    for result in results:
        assert result.returncode in (0, 1) and result.stderr == ""
        json.loads(result.stdout)
        assert result.cpu_seconds < CAP_SECONDS and result.peak_mib < CAP_MIB


def fuzzed_command_line(rng: random.Random) -> list[str]:
    words = [f"-{letter}" for letter in SHORT_OPTIONS] + [f"--{name}" for name in LONG_OPTIONS]
    args = []
    for _ in range(rng.randrange(1, 6)):
        kind = rng.random()
        if kind < 0.5:
            word = rng.choice(words)
            args.append(word[: rng.randrange(3, len(word) + 1)] if word.startswith("--") else word)
        elif kind < 0.6:
            args.append(rng.choice(words) + "=" + rng.choice(("", "x", "-e", "\udcff")))
        elif kind < 0.8:
            args.append(f"/nonexistent/fuzz/{rng.randrange(1000)}")
        elif kind < 0.9:
            args.append("--")
        else:
            args.append(os.fsdecode(bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 8)))))
    return args


def test_fuzzed_command_lines_through_the_kexec_script(tmp_path):
    # The installed script's own preflight reads this machine; the only kexec it may run is the harmless one.
    wheel = install(tmp_path / "wheel", Path("/bin/false"))
    kexec_dir = harmless_kexec(tmp_path / "harmless")
    rng = random.Random(2026)
    env = {"PATH": f"{kexec_dir}:/usr/bin:/bin", "KEXEC_BIN_PREFER": "system"}
    command_lines = [fuzzed_command_line(rng) for _ in range(100)]

    def kexec(args):
        return args, run_measured([str(wheel.kexec), *args], timeout=30, env=env)

    with ThreadPoolExecutor(WORKERS) as pool:
        for args, result in pool.map(kexec, command_lines):
            assert result.returncode in (0, EXIT_BLOCKED, EXIT_USAGE, EXIT_UNAVAILABLE), (args, result)
            assert "Traceback" not in result.stderr, args
            assert result.cpu_seconds < CAP_SECONDS and result.peak_mib < CAP_MIB, (args, result)
