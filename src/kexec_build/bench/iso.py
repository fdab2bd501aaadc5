"""`inv bench` rows for `kexec-bin iso` on a 1 GiB image: extraction against bsdtar, --list, peak memory.

The image is a grub-mkrescue image around Debian's installer whose kernel and initrd are stored
after 1 GiB of padding (where a live system keeps its squashfs), so a reader that streams through
the image pays for it; kexec-bin reads only directory records and the two files.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import WheelError
from ..testbed import iso_images
from ..testbed.trial import fresh_venv, native_wheel
from .measure import Row, timed

PADDING = 1 << 30
ROUNDS = 5
EXTRACT_GOAL = 1.2
LIST_GOAL_SECONDS = 0.5
MEMORY_GOAL_MIB = 64
FILES = ("install.amd/vmlinuz", "install.amd/initrd.gz")
# The extraction alone, timed inside the installed runtime's own interpreter (its start-up is the next row's).
EXTRACT = """import sys, tempfile, time
from kexec_bin.isofs import IsoImage
into = tempfile.mkdtemp(dir=sys.argv[2])
started = time.perf_counter()
with IsoImage(sys.argv[1]) as image:
    for index, path in enumerate(sys.argv[3:]):
        image.extract("/" + path, f"{into}/{index}", path)
print(time.perf_counter() - started)
"""
# Peak resident memory of a command, from the kernel's own account of the finished child.
PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def iso_rows(work: Path) -> list[Row]:
    """`kexec-bin iso` (the wheel alone, its reader is stdlib) against bsdtar on the same 1 GiB image, in turns."""
    missing = iso_images.missing_tools() or ("" if shutil.which("bsdtar") else "bsdtar not installed")
    if missing:
        raise WheelError(f"inv bench (iso): {missing}")
    image = iso_images.loopback_image(work, padding=PADDING)
    venv = fresh_venv(work / "venv", native_wheel(work / "dist"))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(KEXEC_BIN_PREFER="bundled", PATH=f"{venv.root / 'bin'}:/usr/bin:/bin", TMPDIR=str(work))
    kexec_bin = str(venv.script("kexec-bin"))
    plan = [kexec_bin, "iso", str(image), "--dry-run", "--console", "none"]
    listing = [kexec_bin, "iso", str(image), "--list"]
    extract = [str(venv.python), "-c", EXTRACT, str(image), str(work), *FILES]
    times: dict[str, list[float]] = {"extract": [], "plan": [], "list": [], "bsdtar": []}
    for _ in range(ROUNDS):  # in turns, so a busy moment hits all alike
        times["extract"].append(
            float(subprocess.run(extract, env=env, capture_output=True, text=True, check=True).stdout)
        )
        times["plan"].append(timed(plan, cwd=work, env=env))
        times["list"].append(timed(listing, cwd=work, env=env))
        # Each extraction writes into a new folder, as `kexec-bin iso` does, so neither pays for replacing files.
        unpacked = Path(tempfile.mkdtemp(dir=work))
        times["bsdtar"].append(timed(["bsdtar", "-x", "-f", str(image), "-C", str(unpacked), *FILES], cwd=work))
    extract_s, plan_s, list_s, bsdtar_s = (
        statistics.median(times[name]) for name in ("extract", "plan", "list", "bsdtar")
    )
    peak = (
        int(
            subprocess.run(
                [sys.executable, "-c", PEAK_RSS, *plan], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        / 1024
    )
    return [
        Row(
            "iso: open a 1 GiB image, extract an entry's kernel+initrd vs bsdtar -x of the two files",
            extract_s,
            "s",
            f"ratio <= {EXTRACT_GOAL}",
            extract_s / bsdtar_s <= EXTRACT_GOAL,
            bsdtar_s,
        ),
        Row(
            "iso: kexec-bin iso --dry-run (Python start, plan, extraction) vs bsdtar -x",
            plan_s,
            "s",
            "shown, no goal",
            True,
            bsdtar_s,
        ),
        Row("iso: --list of a 1 GiB image", list_s, "s", f"< {LIST_GOAL_SECONDS} s", list_s < LIST_GOAL_SECONDS),
        Row(
            "iso: peak memory planning an entry of a 1 GiB image",
            peak,
            "MiB",
            f"<= {MEMORY_GOAL_MIB} MiB",
            peak <= MEMORY_GOAL_MIB,
        ),
    ]
