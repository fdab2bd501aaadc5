"""Hostile Debian mirrors for the fuzz test, and the worker that plans netboots from them.

`python -m tests.runtime.fuzz_mirror WORK FIRST COUNT` makes a small archive of its own (a throwaway
signing key, a Release, a Packages.xz, a netboot .deb holding a tiny linux and initrd.gz, laid out
as Debian lays them out), serves it on a loopback port, and for cases FIRST to FIRST+COUNT-1 (case N
from random seed N, so a failure is reproduced by its number) serves it with one hostile change: a
truncated, random, oversized, trickled, mistyped or re-signed InRelease, Packages.xz or .deb, the
signed chain intact or not. Each case runs `kexec-bin netboot debian --dry-run --mirror URL` in
this process and prints one JSON line: exit status, wall-clock and CPU seconds, peak memory (VmHWM,
reset before the case) and what went wrong (a traceback, an internal error, an error of more than
one line, a status no documented error has).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import lzma
import os
import random
import signal
import sys
import tarfile
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Callable, Mapping

from kexec_build.testbed.netboot_mirror import Answer, ThrowawayKeys, serve
from tests.runtime.fuzz_hostile import HANG_SECONDS, _alarm, cpu_seconds, peak_mib, reset_peak

SUITE = "trixie"
DEB = "pool/main/d/debian-installer-netboot-images/debian-installer-13-netboot-amd64_1_all.deb"
TEXT = "./usr/lib/debian-installer/images/13/amd64/text/debian-installer/amd64/"
PACKAGES = "main/binary-amd64/Packages.xz"
# Every status a netboot may end with: ok, refused, usage, verification, cannot write, download.
STATUSES = {0, 1, 64, 65, 74, 75}


def tar_xz(members: Mapping[str, bytes | str]) -> bytes:
    """A data.tar.xz: name → bytes (a file) or str (a symbolic link to it)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:xz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


def multi_block_xz(members: Mapping[str, bytes | str]) -> bytes:
    """A data.tar.xz in several blocks, as xz writes when it compresses with threads (decoded on two cores)."""
    import subprocess

    plain = lzma.decompress(tar_xz(members))
    return subprocess.run(["xz", "--block-size=16KiB", "-c"], input=plain, capture_output=True, check=True).stdout


def ar(members: dict[str, bytes], size_field: str | None = None) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        size = (size_field or str(len(data))).ljust(10).encode()
        out += name.ljust(16).encode() + b"0".ljust(12) + b"0".ljust(6) * 2 + b"100644".ljust(8) + size + b"`\n"
        out += data + (b"\n" if len(data) % 2 else b"")
    return out


def healthy_files() -> dict[str, bytes | str]:
    return {
        TEXT + "linux": b"MZ" + bytes(40000),
        TEXT + "initrd.gz": gzip.compress(b"070701" + random.randbytes(40000)),
    }


def deb(data_name: str = "data.tar.xz", data: bytes | None = None, size_field: str | None = None) -> bytes:
    return ar({"debian-binary": b"2.0\n", data_name: tar_xz(healthy_files()) if data is None else data}, size_field)


def packages_xz(deb_bytes: bytes, **changes: str) -> bytes:
    fields = {
        "Package": "debian-installer-13-netboot-amd64",
        "Version": "1",
        "Architecture": "all",
        "Filename": DEB,
        "Size": str(len(deb_bytes)),
        "SHA256": hashlib.sha256(deb_bytes).hexdigest(),
        **changes,
    }
    stanza = "".join(f"{name}: {value}\n" for name, value in fields.items() if value != "")
    return lzma.compress(f"Package: other\nVersion: 1\n\n{stanza}\nPackage: last\n".encode(), preset=0)


def release(packages: bytes, **changes: str) -> bytes:
    now = time.time()
    fields = {
        "Origin": "Debian",
        "Suite": "stable",
        "Codename": SUITE,
        "Version": "13.8",
        "Date": format_datetime(datetime.fromtimestamp(now - 86400, timezone.utc), usegmt=True),
        "Valid-Until": format_datetime(datetime.fromtimestamp(now + 7 * 86400, timezone.utc), usegmt=True),
        **changes,
    }
    text = "".join(f"{name}: {value}\n" for name, value in fields.items() if value != "")
    return (text + f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} {PACKAGES}\n").encode()


class Archive:
    """The healthy archive and the keys that sign it (`key`, in the keyring) or not (`stranger`)."""

    def __init__(self, keys: ThrowawayKeys, work: Path) -> None:
        self.keys = keys
        self.key, self.stranger = keys.make("Fuzz Archive Key"), keys.make("Stranger Key")
        self.keyring = keys.keyring([self.key], work / "keyring.gpg")
        self.deb = deb()
        self.packages = packages_xz(self.deb)
        self.healthy = self.files()  # signed once: most cases change it, and each signature is a gpg run

    def files(
        self,
        deb_bytes: bytes | None = None,
        packages: bytes | None = None,
        signers: list[str] | None = None,
        release_changes: Mapping[str, str] = {},
    ) -> dict[str, bytes]:
        """The mirror's files with a (signed) change: a .deb and the Packages.xz and InRelease naming it."""
        deb_bytes = self.deb if deb_bytes is None else deb_bytes
        packages = packages_xz(deb_bytes) if packages is None else packages
        text = release(packages, **release_changes)
        inrelease = self.keys.sign(text, signers or [self.key])
        return {f"dists/{SUITE}/InRelease": inrelease, f"dists/{SUITE}/{PACKAGES}": packages, DEB: deb_bytes}


def mutations(archive: Archive, rng: random.Random) -> list[tuple[str, Callable[[], dict]]]:
    """Each hostile change: a name, and the mirror's files with it (path → response; absent: 404)."""
    good = archive.healthy
    inrelease, packages = f"dists/{SUITE}/InRelease", f"dists/{SUITE}/{PACKAGES}"

    def cut(data: bytes) -> bytes:
        return data[: rng.randrange(len(data))]

    def noise(size: int) -> bytes:
        return rng.randbytes(size)

    return [
        ("healthy", lambda: good),
        ("inrelease truncated", lambda: {**good, inrelease: cut(good[inrelease])}),
        ("inrelease random", lambda: {**good, inrelease: noise(rng.randrange(1, 5000))}),
        ("inrelease empty", lambda: {**good, inrelease: b""}),
        ("inrelease absent", lambda: {path: data for path, data in good.items() if path != inrelease}),
        ("inrelease html", lambda: {**good, inrelease: (b"<html>portal</html>", "text/html", 200, None, 0.0)}),
        ("inrelease server error", lambda: {**good, inrelease: (b"busy", "text/plain", 503, None, 0.0)}),
        ("inrelease announced huge", lambda: {**good, inrelease: (good[inrelease], "text/plain", 200, 1 << 40, 0.0)}),
        (
            "inrelease cut short",
            lambda: {**good, inrelease: (cut(good[inrelease]), "text/plain", 200, len(good[inrelease]), 0.0)},
        ),
        ("inrelease over the cap", lambda: {**good, inrelease: noise(5 << 20)}),
        ("inrelease trickled", lambda: {**good, inrelease: (good[inrelease], "text/plain", 200, None, 0.05)}),
        ("inrelease bit flipped", lambda: {**good, inrelease: _flip(good[inrelease], rng)}),
        ("inrelease unsigned", lambda: {**good, inrelease: release(archive.packages)}),
        ("inrelease by a stranger", lambda: archive.files(signers=[archive.stranger])),
        ("inrelease by both", lambda: archive.files(signers=[archive.key, archive.stranger])),
        ("wrong suite", lambda: archive.files(release_changes={"Suite": "unstable", "Codename": "sid"})),
        ("expired", lambda: archive.files(release_changes={"Valid-Until": "Mon, 01 Jan 2024 00:00:00 UTC"})),
        (
            "garbled valid-until",
            lambda: archive.files(release_changes={"Valid-Until": rng.choice(["", "x", "32 Foo 2026", "\u00ff"])}),
        ),
        (
            "garbled date",
            lambda: archive.files(release_changes={"Date": rng.choice(["", "yesterday", "Mon, 99 Jan 2026 00:00:00"])}),
        ),
        ("future date", lambda: archive.files(release_changes={"Date": "Mon, 01 Jan 2035 00:00:00 UTC"})),
        ("packages truncated", lambda: {**good, packages: cut(good[packages])}),
        ("packages random, signed", lambda: archive.files(packages=noise(rng.randrange(1, 9000)))),
        ("packages not xz, signed", lambda: archive.files(packages=b"Package: x\n")),
        (
            "packages climbing filename, signed",
            lambda: archive.files(packages=packages_xz(archive.deb, Filename="pool/../../etc/passwd.deb")),
        ),
        ("packages huge size, signed", lambda: archive.files(packages=packages_xz(archive.deb, Size=str(1 << 45)))),
        ("packages no sha256, signed", lambda: archive.files(packages=packages_xz(archive.deb, SHA256=""))),
        (
            "packages not utf-8, signed",
            lambda: archive.files(
                packages=lzma.compress(b"Package: debian-installer-13-netboot-amd64\nFilename: \xff\n")
            ),
        ),
        ("deb changed", lambda: {**good, DEB: _flip(good[DEB], rng)}),
        ("deb random, signed", lambda: archive.files(deb_bytes=noise(rng.randrange(1, 20000)))),
        ("deb no data member, signed", lambda: archive.files(deb_bytes=ar({"debian-binary": b"2.0\n"}))),
        ("deb zstd data, signed", lambda: archive.files(deb_bytes=deb("data.tar.zst", noise(300)))),
        (
            "deb bad size field, signed",
            lambda: archive.files(deb_bytes=deb(size_field=rng.choice(["abc", "-1", "99999999"]))),
        ),
        (
            "deb corrupt xz, signed",
            lambda: archive.files(deb_bytes=deb(data=_flip(tar_xz({TEXT + "linux": bytes(999)}), rng))),
        ),
        (
            "deb kernel a symlink, signed",
            lambda: archive.files(
                deb_bytes=deb(data=tar_xz({TEXT + "linux": "/etc/shadow", TEXT + "initrd.gz": b"x"}))
            ),
        ),
        ("deb no initrd, signed", lambda: archive.files(deb_bytes=deb(data=tar_xz({TEXT + "linux": b"MZ"})))),
        ("deb multi-block, signed", lambda: archive.files(deb_bytes=deb(data=multi_block_xz(healthy_files())))),
        (
            "deb multi-block corrupt, signed",
            lambda: archive.files(deb_bytes=deb(data=_flip(multi_block_xz(healthy_files()), rng))),
        ),
        ("deb truncated, signed", lambda: archive.files(deb_bytes=cut(archive.deb))),
        (
            "deb gzip bomb member, signed",
            lambda: archive.files(
                deb_bytes=deb(data=tar_xz({TEXT + "linux": bytes(8 << 20), TEXT + "initrd.gz": b"x"}))
            ),
        ),
    ]


def _flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return b"x"
    changed = bytearray(data)
    changed[rng.randrange(len(changed))] ^= 1 << rng.randrange(8)
    return bytes(changed)


def run_case(mirror: str, keyring: Path, root: Path) -> tuple[int, str]:
    from kexec_bin import cli

    err = io.StringIO()
    arguments = ["netboot", "debian", "--root", str(root), "--dry-run", "--network", "dhcp", "--arch", "amd64"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = cli.main([*arguments, "--mirror", mirror, "--release", SUITE, "--keyring", str(keyring)])
    return status, err.getvalue()


def main() -> int:
    work, first, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    root = work / "root"
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc/cmdline").write_text("console=ttyS0\n")
    (root / "proc/meminfo").write_text("MemTotal: 2048000 kB\nMemAvailable: 1900000 kB\n")
    (work / "sbin").mkdir(exist_ok=True)
    (work / "sbin/kexec").write_text("#!/bin/sh\nexit 0\n")  # a plan needs a kexec to name; none runs
    (work / "sbin/kexec").chmod(0o755)
    os.environ["PATH"] = f"{work / 'sbin'}:/usr/bin:/bin"
    os.environ["KEXEC_BIN_PREFER"] = "system"
    signal.signal(signal.SIGALRM, _alarm)
    served: dict[str, Answer] = {}
    with ThrowawayKeys() as keys, serve(served) as url:
        archive = Archive(keys, work)
        for seed in range(first, first + count):
            rng = random.Random(seed)
            choices = mutations(archive, rng)
            name, make = choices[seed % len(choices)]
            served.clear()
            served.update(make())
            os.environ["KEXEC_BIN_CACHE"] = str(work / "cache" / str(seed))
            problems: list[str] = []
            reset_peak()
            cpu, started = cpu_seconds(), time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
            try:
                status, err = run_case(url, archive.keyring, root)
            except BaseException as error:  # a hang (the alarm) or anything that escaped the boundary
                status, err = -1, ""
                problems.append(f"{type(error).__name__}: {error}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if status not in STATUSES:
                problems.append(f"status {status}")
            if "Traceback" in err or "internal error" in err:
                problems.append(err.strip())
            if status != 0 and err.count("\n") != 1:
                problems.append(f"not one line: {err!r}")
            if name in ("healthy", "deb multi-block, signed") and status != 0:
                problems.append(f"healthy mirror refused: {err.strip()}")
            print(
                json.dumps(
                    {
                        "seed": seed,
                        "case": name,
                        "status": status,
                        "seconds": time.monotonic() - started,
                        "cpu_seconds": cpu_seconds() - cpu,
                        "peak_mib": peak_mib(),
                        "problems": problems,
                        "error": err.strip()[:300],
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
