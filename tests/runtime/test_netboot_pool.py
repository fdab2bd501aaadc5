"""`kexec-bin netboot debian` from a mirror that holds only dists/ and pool/, and from hostile mirrors.

The loopback mirror serves Debian's real trixie InRelease, main/binary-amd64/Packages.xz and the
debian-installer-13-netboot-amd64 .deb it names (fetched once from the host's own archive and kept
in the cache), and no installer images, as partial mirrors and package caches do. Each run is the
real command in a process of its own, so its exit code, its stderr and its peak memory are its own;
the kernel and initrd it plans are compared with what `dpkg-deb` takes out of the same package.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kexec_bin import download
from kexec_bin.debian import archive
from kexec_bin.errors import CacheError, DownloadError, UsageError, VerificationError
from kexec_build.testbed import netboot_mirror
from tests.runtime.installed import system_kexec

SUITE, ARCH = "trixie", "amd64"
PROJECT = Path(__file__).resolve().parents[2]
TEXT = f"usr/lib/debian-installer/images/13/{ARCH}/text/debian-installer/{ARCH}"
PACKAGE = f"debian-installer-13-netboot-{ARCH}"
pytestmark = pytest.mark.skipif(
    not Path(archive.HOST_KEYRING).is_file(),
    reason="needs Debian's archive keyring (apt-get install debian-archive-keyring)",
)


@pytest.fixture(scope="module")
def pool() -> dict[str, bytes]:
    return netboot_mirror.pool_files(SUITE, ARCH)


@pytest.fixture(scope="module")
def deb_path(pool) -> str:
    (path,) = [path for path in pool if path.endswith(".deb")]
    return path


@pytest.fixture(scope="module")
def by_dpkg(pool, deb_path, tmp_path_factory) -> dict[str, str]:
    """sha256 of linux and initrd.gz as dpkg-deb takes them out of the package."""
    folder = tmp_path_factory.mktemp("dpkg")
    (folder / "p.deb").write_bytes(pool[deb_path])
    subprocess.run(["dpkg-deb", "-x", str(folder / "p.deb"), str(folder / "x")], check=True)
    return {
        name: hashlib.sha256((folder / "x" / TEXT / name).read_bytes()).hexdigest() for name in ("linux", "initrd.gz")
    }


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """A cache the plans that succeed share: the package is taken apart once for all of them."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def run(tmp_path):
    """Run `kexec-bin netboot debian --dry-run` in a process of its own; (status, out, err, peak RSS in KiB)."""
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/cmdline").write_text("root=/dev/vda ro console=ttyS0\n")
    (root / "proc/meminfo").write_text("MemTotal: 2048000 kB\nMemAvailable: 1900000 kB\n")
    sbin = system_kexec(tmp_path / "sbin", "exit 0\n")

    def netboot(*args: str, env: dict[str, str] | None = None, limit_file_size: int | None = None):
        environment = {
            "PATH": f"{sbin}:/usr/bin:/bin",
            "PYTHONPATH": f"{PROJECT / 'src'}",
            "KEXEC_BIN_PREFER": "system",
            "KEXEC_BIN_CACHE": str(tmp_path / "cache"),
            "HOME": str(tmp_path),
            **(env or {}),
        }
        command = [sys.executable, "-m", "kexec_bin", "netboot", "debian", "--root", str(root), "--dry-run"]
        command += ["--network", "dhcp", *args]
        # A wrapper process whose only child is the command: its children's peak RSS is the command's.
        wrapper = (
            "import resource, signal, subprocess, sys\n"
            f"limit = {limit_file_size!r}\n"
            "def setup():\n"
            "    if limit:\n"
            "        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
            "status = subprocess.run(sys.argv[1:], preexec_fn=setup).returncode\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(status)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, env=environment, timeout=300
        )
        err, _, peak = done.stderr.rstrip("\n").rpartition("\n")
        assert "Traceback" not in err, err
        return done.returncode, done.stdout, err + ("\n" if err else ""), int(peak)

    netboot.cache = tmp_path / "cache" / "downloads"  # type: ignore[attr-defined]
    return netboot


def test_a_mirror_of_dists_and_pool_only_gives_the_packages_kernel_and_initrd(run, pool, deb_path, by_dpkg):
    with netboot_mirror.serve(pool) as url:
        status, out, err, peak = run("--mirror", url, "--release", SUITE, "--arch", ARCH)
    assert status == 0, err
    assert (
        "pool path: images/SHA256SUMS cannot be fetched (" in out
        and "HTTP 404" in out
        and ": using the signed package debian-installer-13-netboot-amd64 " in out
    ), out
    for name, digest in by_dpkg.items():
        assert f"{url}/{deb_path}#debian-installer/{ARCH}/{name}" in out
        assert (run.cache / "sha256" / digest).is_file()
        assert f"checked: sha256 {digest} from data.tar of debian-installer-13-netboot-amd64" in out
    assert peak <= 64 << 10, f"peak RSS {peak} KiB, more than 64 MiB"


def test_a_second_plan_needs_only_inrelease_again(run, shared_cache, pool):
    log: list[str] = []
    with netboot_mirror.serve(pool, log=log) as url:
        shared = {"KEXEC_BIN_CACHE": str(shared_cache)}
        assert run("--mirror", url, "--release", SUITE, "--arch", ARCH, env=shared)[0] == 0
        first = len(log)
        status, _, err, _ = run("--mirror", url, "--release", SUITE, "--arch", ARCH, env=shared)
    assert status == 0, err
    images = f"/debian/dists/{SUITE}/main/installer-{ARCH}/current/images/SHA256SUMS"
    assert log[first:] == [f"/debian/dists/{SUITE}/InRelease", images]


def test_a_changed_deb_is_refused_and_never_cached(run, pool, deb_path):
    deb = bytearray(pool[deb_path])
    deb[len(deb) // 2] ^= 1
    with netboot_mirror.serve({**pool, deb_path: bytes(deb)}) as url:
        status, out, err, _ = run("--mirror", url, "--release", SUITE, "--arch", ARCH)
    assert status == VerificationError.exit_code and out == ""
    packages = lzma.decompress(pool[f"dists/{SUITE}/main/binary-{ARCH}/Packages.xz"]).decode()
    (listed,) = [stanza["SHA256"] for stanza in archive.stanzas_of(packages, PACKAGE)]
    assert (
        f"{deb_path.rsplit('/', 1)[-1]}: sha256 mismatch: expected {listed}, got {hashlib.sha256(deb).hexdigest()}"
        in err
    )
    assert not (run.cache / "sha256" / hashlib.sha256(deb).hexdigest()).exists()


def test_a_changed_packages_index_is_refused(run, pool):
    index = f"dists/{SUITE}/main/binary-{ARCH}/Packages.xz"
    # An index naming another version of the package; that stanza alone, as compressing the whole index
    # would take seconds and prove no more.
    packages = lzma.decompress(pool[index]).decode()
    stanza = next(block for block in packages.split("\n\n") if block.startswith(f"Package: {PACKAGE}\n"))
    forged = stanza.replace("netboot-amd64_2", "netboot-amd64_3", 1)
    assert forged != stanza
    with netboot_mirror.serve({**pool, index: lzma.compress(forged.encode(), preset=0)}) as url:
        status, out, err, _ = run("--mirror", url, "--release", SUITE, "--arch", ARCH)
    assert status == VerificationError.exit_code and out == ""
    assert f"main/binary-{ARCH}/Packages.xz: " in err and "no verified Packages index" in err, err


def test_a_stale_images_sha256sums_sends_the_plan_to_the_pool_saying_why(run, shared_cache, pool):
    sums = f"dists/{SUITE}/main/installer-{ARCH}/current/images/SHA256SUMS"
    with netboot_mirror.serve({**pool, sums: b"0" * 64 + b"  ./netboot/debian-installer/amd64/linux\n"}) as url:
        status, out, err, _ = run(
            "--mirror", url, "--release", SUITE, "--arch", ARCH, env={"KEXEC_BIN_CACHE": str(shared_cache)}
        )
    assert status == 0, err
    assert "pool path: images/SHA256SUMS does not match InRelease (stale mirror): using the signed package" in out


def test_a_local_folder_holding_dists_and_pool_is_a_mirror(run, shared_cache, pool, tmp_path):
    folder = tmp_path / "mirror"
    for path, data in pool.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    status, out, err, _ = run(
        "--mirror", str(folder), "--release", SUITE, "--arch", ARCH, env={"KEXEC_BIN_CACHE": str(shared_cache)}
    )
    assert status == 0, err
    assert f"mirror: {folder.as_uri()} (--mirror)" in out


def test_a_file_mirror_whose_inrelease_is_a_fifo_is_refused_not_waited_on(run, tmp_path):
    (tmp_path / "m/dists/trixie").mkdir(parents=True)
    os.mkfifo(tmp_path / "m/dists/trixie/InRelease")
    started = time.monotonic()
    status, _, err, _ = run("--mirror", (tmp_path / "m").as_uri(), "--release", SUITE)
    assert time.monotonic() - started < 30
    assert status == DownloadError.exit_code
    assert err.endswith("InRelease is a FIFO, not a regular file: a mirror serves files; check --mirror\n"), err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--mirror", "http://mirror example/debian"], "contains spaces or control characters"),
        (["--mirror", "http://h/debian\r\nX-Injected: 1"], "contains spaces or control characters"),
        (["--mirror", "http://[::1"], "is not a valid URL"),
        (["--mirror", "http://h/d\udcff"], "contains spaces or control characters"),
        (["--mirror", "http://h/déb"], "contains characters outside ASCII"),
        (["--mirror", "/nonexistent/folder"], "is neither a URL (http://, https://, file://) nor a folder"),
        (["--mirror", "ftp://h/debian"], "the scheme 'ftp' is not supported"),
        (["--mirror", "http://h:port/debian"], "is not a valid URL"),
        (["--mirror", "http://user:s3cret@h/debian"], "holds credentials"),
        (["--release", "book worm"], "--release 'book worm' is not a Debian suite or codename"),
        (["--release", "trixie\n"], "is not a Debian suite or codename"),
    ],
)
def test_a_bad_mirror_or_release_is_a_usage_error_before_any_download(run, arguments, expected):
    status, out, err, _ = run(*arguments)
    assert status == UsageError.exit_code and out == ""
    assert expected in err and err.count("\n") == 1, err
    assert "s3cret" not in err


def test_a_full_cache_disk_says_so_not_that_the_connection_broke(run, pool):
    with netboot_mirror.serve(pool) as url:
        status, _, err, _ = run("--mirror", url, "--release", SUITE, "--arch", ARCH, limit_file_size=4 << 20)
    assert status == CacheError.exit_code
    assert "cannot write the download cache" in err and "File too large" in err, err
    assert "connection" not in err


def test_a_cache_that_is_a_file_is_named(run, pool, tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    with netboot_mirror.serve(pool) as url:
        status, _, err, _ = run("--mirror", url, env={"KEXEC_BIN_CACHE": str(tmp_path / "not-a-folder")})
    assert status == CacheError.exit_code and "cannot write the download cache" in err, err


def trickle(every: float, path: str, size: int = 100_000):
    """A mirror that announces `size` bytes at `path` and sends one byte every `every` seconds."""
    return netboot_mirror.serve({path: (b"x" * size, "application/octet-stream", 200, size, every)})


def test_a_trickling_mirror_is_cut_off_at_the_deadline(run):
    with trickle(every=0.2, path=f"dists/{SUITE}/InRelease") as url:
        started = time.monotonic()
        status, _, err, _ = run("--mirror", url, env={"KEXEC_BIN_DOWNLOAD_DEADLINE": "1"})
        took = time.monotonic() - started
    assert status == DownloadError.exit_code
    assert "InRelease: not complete within the download deadline" in err, err
    assert took < 15


def test_a_mirror_slower_than_the_minimum_rate_is_cut_off(monkeypatch):
    monkeypatch.setattr(download, "RATE_WINDOW", 0.5)
    monkeypatch.setattr(download, "MIN_RATE", 1000)
    with trickle(every=0.05, path="file") as url, pytest.raises(DownloadError, match=r"slower than 1000 bytes/s"):
        download.fetch_bytes(f"{url}/file", max_bytes=1 << 20)
