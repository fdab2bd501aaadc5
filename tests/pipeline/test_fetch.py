"""fetch against real HTTP servers on 127.0.0.1: every bad download is an error that leaves no cache entry."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kexec_build import fetch
from kexec_build.errors import FetchError


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
        with pytest.raises(FetchError, match=r"no answer within 1s \(read timeout\)"):
            fetch.fetch(release, mirrors=[server.url], timeout=(2, 1), retries=0)
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
        [sys.executable, "-c", f"from kexec_build import fetch, recipes; import dataclasses; "
         f"r = dataclasses.replace(recipes.load().release(), urls=(), debian_package=''); "
         f"fetch.fetch(r, mirrors=['{server.url}'], retries=0)"],
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
