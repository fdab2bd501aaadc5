"""fetch against real HTTP servers on 127.0.0.1: every bad download is an error that leaves no cache entry."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kexec_build import fetch, wheels
from kexec_build.errors import CacheError, FetchError, WheelError
from tests.inv import inv


@pytest.fixture
def release(recipe_set):
    """The default release, with no upstream URL and no distribution fallback: only our servers count."""
    return dataclasses.replace(recipe_set.release(), urls=(), debian_package="")


@pytest.fixture
def tarball(upstream_dir, release) -> bytes:
    return (upstream_dir / release.source).read_bytes()


def cache_entries(cache: Path) -> list[Path]:
    """Everything in the cache that fetch could hand out (partials excluded by their dot name)."""
    return [p for p in (cache / "sources").rglob("*") if p.is_file() and not p.name.startswith(".")]


class RawServer:
    """A TCP server on 127.0.0.1 that sends exactly what a test scripts, byte for byte."""

    def __init__(self, behaviour) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.behaviour = behaviour
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            with contextlib.suppress(OSError):
                self.behaviour(connection)

    def close(self) -> None:
        self.socket.close()


def headers(length: int) -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n".encode()


def test_first_fetch_verifies_and_second_does_no_network(isolated, httpserver, release, tarball):
    httpserver.expect_oneshot_request(f"/m/{release.source}").respond_with_data(tarball)
    first = fetch.fetch(release, mirrors=[httpserver.url_for("/m")])
    assert first.read_bytes() == tarball
    assert fetch.fetch(release, mirrors=[httpserver.url_for("/m")]) == first
    assert len(httpserver.log) == 1, "the second fetch must be served by the cache alone"


def test_wrong_sha256_is_refused(isolated, httpserver, release, tarball):
    wrong = dataclasses.replace(release, sha256="0" * 64)
    httpserver.expect_request(f"/m/{release.source}").respond_with_data(tarball)
    with pytest.raises(FetchError, match=r"sha256 mismatch .* expected 0{64}, got [0-9a-f]{64}"):
        fetch.fetch(wrong, mirrors=[httpserver.url_for("/m")])
    assert cache_entries(isolated / "cache") == []


def test_one_corrupted_byte_is_refused(isolated, httpserver, release, tarball):
    corrupt = bytearray(tarball)
    corrupt[len(corrupt) // 2] ^= 0x01
    httpserver.expect_request(f"/m/{release.source}").respond_with_data(bytes(corrupt))
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch.fetch(release, mirrors=[httpserver.url_for("/m")])
    assert cache_entries(isolated / "cache") == []


def test_truncated_download_is_refused(isolated, release, tarball):
    server = RawServer(lambda c: c.sendall(headers(len(tarball)) + tarball[: len(tarball) // 2]))
    try:
        with pytest.raises(FetchError, match=r"(?s)kexec-tools.*(truncated|IncompleteRead|interrupted)"):
            fetch.fetch(release, mirrors=[server.url], retries=0)
    finally:
        server.close()
    assert cache_entries(isolated / "cache") == []


def test_404_on_first_mirror_then_success_on_the_next(isolated, httpserver, release, tarball):
    httpserver.expect_request(f"/missing/{release.source}").respond_with_data("nope", status=404)
    httpserver.expect_request(f"/good/{release.source}").respond_with_data(tarball)
    lines: list[str] = []
    got = fetch.fetch(release, mirrors=[httpserver.url_for("/missing"), httpserver.url_for("/good")], log=lines.append)
    assert got.read_bytes() == tarball
    assert any("HTTP 404" in line for line in lines)


def test_server_errors_are_retried(isolated, httpserver, release, tarball):
    httpserver.expect_ordered_request(f"/m/{release.source}").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request(f"/m/{release.source}").respond_with_data(tarball)
    got = fetch.fetch(release, mirrors=[httpserver.url_for("/m")], retries=2)
    assert got.read_bytes() == tarball


def test_server_that_never_answers_times_out(isolated, release):
    server = RawServer(lambda c: time.sleep(30))
    try:
        with pytest.raises(FetchError, match=r"no answer within 0.5s \(read timeout\)"):
            fetch.fetch(release, mirrors=[server.url], timeout=(2, 0.5), retries=0)
    finally:
        server.close()
    assert cache_entries(isolated / "cache") == []


def test_every_failure_is_listed_with_the_fix(isolated, httpserver, release):
    for folder in ("a", "b"):
        httpserver.expect_request(f"/{folder}/{release.source}").respond_with_data("gone", status=404)
    with pytest.raises(FetchError) as caught:
        fetch.fetch(release, mirrors=[httpserver.url_for("/a"), httpserver.url_for("/b")], retries=0)
    message = str(caught.value)
    assert message.count("HTTP 404") == 2
    assert "--mirror" in message and "KEXEC_BIN_MIRRORS" in message


def test_interrupted_download_is_never_used_later(isolated, httpserver, release, tarball):
    """A fetch killed mid-stream leaves at most a partial file, which the next fetch ignores."""

    def trickle(connection):
        connection.sendall(headers(len(tarball)) + tarball[:100_000])
        time.sleep(30)

    server = RawServer(trickle)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from kexec_build import fetch, recipes; import dataclasses; "
            f"r = dataclasses.replace(recipes.load().release(), urls=(), debian_package=''); "
            f"fetch.fetch(r, mirrors=['{server.url}'], retries=0)",
        ],
        env={**os.environ, "PYTHONPATH": str(Path(fetch.__file__).parents[1])},
        stderr=subprocess.PIPE,
    )
    sources = isolated / "cache" / "sources"
    deadline = time.monotonic() + 20
    while not any(p.stat().st_size > 0 for p in sources.rglob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    server.close()
    assert [p.name for p in sources.rglob("*.part")], "the partial download should exist while interrupted"
    assert cache_entries(isolated / "cache") == []

    httpserver.expect_request(f"/m/{release.source}").respond_with_data(tarball)
    assert fetch.fetch(release, mirrors=[httpserver.url_for("/m")]).read_bytes() == tarball
    assert fetch.clean_partials() == 1


def test_a_local_folder_is_a_mirror(isolated, upstream_dir, release, tarball):
    assert fetch.fetch(release, mirrors=[str(upstream_dir)]).read_bytes() == tarball


def test_a_cached_tarball_is_hashed_again_and_a_swapped_one_refused(isolated, upstream_dir, recipe_set, release):
    cached = fetch.fetch(release, mirrors=[str(upstream_dir)])
    other = (upstream_dir / recipe_set.release("2.0.25").source).read_bytes()
    cached.write_bytes(other)
    with pytest.raises(CacheError) as caught:
        fetch.fetch(release, mirrors=[str(upstream_dir)])
    message = str(caught.value)
    assert f"expected sha256 {release.sha256}" in message
    assert f"got {hashlib.sha256(other).hexdigest()}" in message
    assert str(cached) in message and "changed after it was verified" in message
    assert f"rm {cached} && inv fetch" in message
    assert cached.read_bytes() == other, "the refused entry is left for the user to inspect"


# build: `inv build` proves the toolchain by compiling a probe before it reads the tarball (the fast loop's
# tripwire caught the gcc call), so this test needs the native compiler.
@pytest.mark.build
def test_inv_build_refuses_a_swapped_cached_tarball_and_builds_nothing(isolated, upstream_dir, recipe_set, release):
    cached = fetch.fetch(release, mirrors=[str(upstream_dir)])
    cached.write_bytes((upstream_dir / recipe_set.release("2.0.25").source).read_bytes())
    result = inv("build", "--mirror", str(upstream_dir))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "fails its hash check" in result.stderr and "Traceback" not in result.stderr
    built = isolated / "build" / f"kexec-tools-{release.version}" / recipe_set.native_target().name
    assert not (built / "src").exists() and not (built / "kexec").exists()


def test_the_sdist_refuses_a_swapped_cached_tarball(isolated, upstream_dir, recipe_set, release, capfd):
    cached = fetch.fetch(release, mirrors=[str(upstream_dir)])
    cached.write_bytes((upstream_dir / recipe_set.release("2.0.25").source).read_bytes())
    dist = isolated / "dist"
    with pytest.raises(WheelError, match="failed to make the sdist"):
        wheels.make_sdist(recipe_set.release(), mirrors=[str(upstream_dir)], dist=dist, log=lambda line: None)
    assert "fails its hash check" in capfd.readouterr().err
    assert not list(dist.glob("*.tar.gz")) and not (dist / wheels.SUMS).exists()


def endless(sent: list[int], first: bytes, *, pause: float = 0.0, limit: int = 100 << 20):
    """A server behaviour: `first`, then zeros (one byte per `pause` if set) until `limit` bytes went out."""

    def behaviour(connection):
        connection.sendall(first)
        piece = b"\0" if pause else b"\0" * 65536
        while sent[0] < limit:
            connection.sendall(piece)
            sent[0] += len(piece)
            time.sleep(pause)

    return behaviour


def test_an_endless_body_stops_at_the_recipes_size(isolated, release):
    sent = [0]
    server = RawServer(endless(sent, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"))
    try:
        with pytest.raises(FetchError, match=rf"sent more than the {release.size} bytes the recipe records"):
            fetch.fetch(release, mirrors=[server.url], retries=0)
    finally:
        server.close()
    assert cache_entries(isolated / "cache") == []
    assert not list((isolated / "cache").rglob("*.part"))
    # What the server got out before the client hung up: the size plus socket buffers, not the 100 MiB it offered.
    assert sent[0] < 40 << 20


def test_a_trickle_stops_at_the_overall_deadline(isolated, release):
    server = RawServer(endless([0], headers(release.size), pause=0.05))
    try:
        # A byte every 0.05 s keeps the 0.5 s read timeout from firing: only the deadline stops it.
        with pytest.raises(FetchError, match=r"not finished within 1s \(the limit for one download\)"):
            fetch.fetch(release, mirrors=[server.url], retries=0, timeout=(2, 0.5), deadline=1)
    finally:
        server.close()
    assert cache_entries(isolated / "cache") == []


def inv_fetch(cache: Path, *mirrors: str) -> subprocess.CompletedProcess:
    """`inv fetch` as a user runs it, with this cache and these mirrors only."""
    arguments = [argument for mirror in mirrors for argument in ("--mirror", mirror)]
    return inv("fetch", *arguments, env={**os.environ, "KEXEC_BIN_CACHE": str(cache)})


def one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    return line


def test_a_full_disk_during_fetch_is_one_line_and_leaves_nothing(isolated, mounted, httpserver, release, tarball):
    httpserver.expect_request(f"/m/{release.source}").respond_with_data(tarball)
    small = mounted(f"size={len(tarball) // 2}")
    line = one_line_error(inv_fetch(small, httpserver.url_for("/m")), 3)
    assert "No space left on device" in line and "free some space" in line
    assert "rm " not in line and "delete" not in line, "a full disk is no reason to drop a good cache entry"
    leftovers = [p.name for p in small.rglob("*") if p.is_file()]
    assert leftovers == [".lock"], leftovers


def test_a_cache_that_is_a_file_is_one_line(isolated, upstream_dir):
    cache = isolated / "cache-file"
    cache.write_text("not a folder\n")
    line = one_line_error(inv_fetch(cache, str(upstream_dir)), 3)
    assert str(cache) in line and "point $KEXEC_BIN_CACHE at a folder" in line
    assert cache.read_text() == "not a folder\n"


@pytest.fixture
def read_only(tmp_path, request) -> Path:
    """A folder this process cannot write: a read-only tmpfs as root (root ignores modes), else mode 0555."""
    if os.geteuid() == 0:
        return request.getfixturevalue("mounted")("ro,size=1m")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    return folder


def test_a_read_only_cache_is_one_line(isolated, read_only, upstream_dir):
    line = one_line_error(inv_fetch(read_only, str(upstream_dir)), 3)
    assert str(read_only) in line and "point $KEXEC_BIN_CACHE at a folder you can write" in line
    assert list(read_only.iterdir()) == []


def test_credentials_in_a_mirror_url_reach_no_log_line(isolated, httpserver, release, tarball, capfd):
    httpserver.expect_request(f"/missing/{release.source}").respond_with_data("nope", status=404)
    httpserver.expect_request(f"/good/{release.source}").respond_with_data(tarball)
    base = httpserver.url_for("/").replace("http://", "http://mirror-user:s3cret-token@").rstrip("/")
    lines: list[str] = []
    fetch.fetch(release, mirrors=[f"{base}/missing", f"{base}/good"], log=lines.append)
    printed = "\n".join(lines) + capfd.readouterr().err
    assert "s3cret-token" not in printed and "mirror-user" not in printed
    assert "http://****@127.0.0.1" in printed and "HTTP 404" in printed and "verified" in printed


def test_credentials_in_a_mirror_url_reach_no_error(isolated, httpserver, release):
    httpserver.expect_request(f"/missing/{release.source}").respond_with_data("nope", status=404)
    refused = socket.create_server(("127.0.0.1", 0))
    closed_port = refused.getsockname()[1]
    refused.close()
    mirrors = [
        httpserver.url_for("/missing").replace("http://", "http://user:s3cret@"),
        f"http://user:s3cret@127.0.0.1:{closed_port}/m",
    ]
    lines: list[str] = []
    with pytest.raises(FetchError) as caught:
        fetch.fetch(release, mirrors=mirrors, retries=0, log=lines.append)
    printed = "\n".join([str(caught.value), *lines])
    assert "s3cret" not in printed
    assert "HTTP 404" in printed and "connection refused" in printed
