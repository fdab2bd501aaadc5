"""`inv bench` rows for `kexec-bin netboot`: the verified download's throughput against curl's.

The mirror is the loopback one of the tests (the archive's real signed files and Debian's netboot
kernel and initrd). Ours: `kexec_bin.debian.installer_files` into an empty cache, which fetches
SHA256SUMS, kernel and initrd, hashes each as it streams and renames it into the cache once it
matched. curl fetches the same three files in one process and checks nothing. Runs alternate, so
a busy moment hits both alike; the medians are compared.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path

from kexec_bin import debian

from ..testbed import netboot_mirror
from .measure import Row, timed

ROUNDS = 5
SUITE, ARCH = "bookworm", "amd64"
# Throughput at least 0.8 times curl's: time at most 1/0.8 of curl's.
GOAL = 1 / 0.8


def netboot_rows(work: Path) -> list[Row]:
    """Cold verified download of the netboot files against `curl` for the same files."""
    files = netboot_mirror.files(SUITE, ARCH)
    images = f"dists/{SUITE}/main/installer-{ARCH}/current/images/"
    fetched = sorted(path for path in files if path.startswith(images))
    times: dict[str, list[float]] = {"ours": [], "curl": []}
    cache, copies = work / "cache", work / "curl"
    copies.mkdir()
    with netboot_mirror.serve(files) as mirror:
        release = debian.release(mirror, SUITE, debian.choose_keyring(None))
        curl = ["curl", "--silent", "--fail"]
        for index, path in enumerate(fetched):
            curl += ["--output", str(copies / str(index)), f"{mirror}/{path}"]
        for _ in range(ROUNDS):
            shutil.rmtree(cache, ignore_errors=True)
            started = time.perf_counter()
            debian.installer_files(mirror, release, ARCH, cache=cache)
            times["ours"].append(time.perf_counter() - started)
            times["curl"].append(timed(curl, cwd=work, env=dict(os.environ)))
    size = sum(len(files[path]) for path in fetched) / (1 << 20)
    ours, baseline = statistics.median(times["ours"]), statistics.median(times["curl"])
    return [
        Row(
            f"netboot: cold verified download ({size:.0f} MiB, loopback) vs curl",
            ours,
            "s",
            f"<= {GOAL:.2f}x curl (throughput >= 0.8x)",
            ours <= GOAL * baseline,
            baseline=baseline,
        )
    ]
