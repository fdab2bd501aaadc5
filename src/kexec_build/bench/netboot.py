"""`inv bench` rows for `kexec-bin netboot`: both verified paths against curl, and a warm plan.

The mirrors are the loopback ones of the tests (the archive's real signed files and Debian's netboot
kernel and initrd, or its Packages.xz and netboot .deb). Ours: `installer.installer_files` into an
empty cache. By the images path it fetches SHA256SUMS, kernel and initrd, hashing each as it streams;
curl fetches the same three files and checks nothing. By the pool path it fetches and checks
Packages.xz and the .deb, and takes linux and initrd.gz out of the .deb's data.tar; the baseline is
curl of the same .deb plus `dpkg-deb -x` by hand. Runs alternate, so a busy moment hits both alike;
the medians are compared. The warm plan is a second one with everything cached: InRelease fetched
and checked again, the cached files hashed again.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path

from kexec_bin.debian import archive, installer

from ..testbed import netboot_mirror
from .measure import Row, timed

ROUNDS = 5
SUITE, ARCH = "bookworm", "amd64"
# Throughput at least 0.8 times curl's: time at most 1/0.8 of curl's.
GOAL = 1 / 0.8
POOL_SUITE, POOL_ROUNDS = "trixie", 3
POOL_GOAL = 1.2  # the pool path against curl + dpkg-deb -x of the same .deb
WARM_GOAL = 0.5  # seconds


def netboot_rows(work: Path) -> list[Row]:
    """Cold verified download of the netboot files against `curl` for the same files."""
    files = netboot_mirror.files(SUITE, ARCH)
    images = f"dists/{SUITE}/main/installer-{ARCH}/current/images/"
    fetched = sorted(path for path in files if path.startswith(images))
    times: dict[str, list[float]] = {"ours": [], "curl": []}
    cache, copies = work / "cache", work / "curl"
    copies.mkdir()
    with netboot_mirror.serve(files) as mirror:
        release = archive.fetch_release(mirror, SUITE, archive.keyrings(None))
        curl = ["curl", "--silent", "--fail"]
        for index, path in enumerate(fetched):
            curl += ["--output", str(copies / str(index)), f"{mirror}/{path}"]
        for _ in range(ROUNDS):
            shutil.rmtree(cache, ignore_errors=True)
            started = time.perf_counter()
            installer.installer_files(mirror, release, ARCH, cache=cache)
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


def pool_rows(work: Path) -> list[Row]:
    """The pool path cold (download, verify, extract) against curl + `dpkg-deb -x`; a warm plan."""
    files = netboot_mirror.pool_files(POOL_SUITE, ARCH)
    (deb,) = [path for path in files if path.endswith(".deb")]
    times: dict[str, list[float]] = {"ours": [], "by hand": []}
    cache = work / "pool-cache"
    with netboot_mirror.serve(files) as mirror:
        by_hand = f"curl --silent --fail --output p.deb {mirror}/{deb} && rm -rf x && dpkg-deb -x p.deb x"
        for _ in range(POOL_ROUNDS):
            shutil.rmtree(cache, ignore_errors=True)
            started = time.perf_counter()
            release = archive.fetch_release(mirror, POOL_SUITE, archive.keyrings(None))
            found = installer.installer_files(mirror, release, ARCH, cache=cache)
            times["ours"].append(time.perf_counter() - started)
            times["by hand"].append(timed(["sh", "-c", by_hand], cwd=work, env=dict(os.environ)))
        assert found.path == "pool", found.decisions
        started = time.perf_counter()
        release = archive.fetch_release(mirror, POOL_SUITE, archive.keyrings(None))
        installer.installer_files(mirror, release, ARCH, cache=cache)
        warm = time.perf_counter() - started
    size = len(files[deb]) / (1 << 20)
    ours, baseline = statistics.median(times["ours"]), statistics.median(times["by hand"])
    return [
        Row(
            f"netboot: pool path cold ({size:.0f} MiB .deb, loopback) vs curl + dpkg-deb -x",
            ours,
            "s",
            f"<= {POOL_GOAL}x by hand",
            ours <= POOL_GOAL * baseline,
            baseline=baseline,
        ),
        Row(
            "netboot: warm plan (InRelease checked, cached files hashed)",
            warm,
            "s",
            f"< {WARM_GOAL} s",
            warm < WARM_GOAL,
        ),
    ]
