"""Downloads over HTTP(S) with the standard library: bounded, retried, and checked before use.

A file whose sha256 is known ahead (from a signed index) lands in a content-addressed cache,
`<cache>/downloads/sha256/<hash>`, and only after its hash matched: a bad or cut-off download
never enters the cache, and a cached file is used again without the network. A small signed
index whose hash nobody knows ahead (InRelease) is fetched fresh into memory each time.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import DownloadError, VerificationError
from .resolve import sha256_of

TIMEOUT = 30.0  # seconds without a byte before a connection counts as stalled
DEADLINE = 30 * 60.0  # seconds for one file, retries included
ATTEMPTS = 3  # tries for a connection error or a server error (5xx); other answers are final
CHUNK = 1 << 16


def cache_dir() -> Path:
    """The user's download cache: $KEXEC_BIN_CACHE, else $XDG_CACHE_HOME/kexec-bin, then downloads/."""
    base = os.environ.get("KEXEC_BIN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kexec-bin"
    )
    return Path(base) / "downloads"


def fetch_bytes(url: str, *, max_bytes: int) -> bytes:
    """The body at `url`, at most `max_bytes` long, fresh from the server."""
    chunks: list[bytes] = []
    _fetch(url, max_bytes, chunks.append)
    return b"".join(chunks)


def fetch_file(url: str, *, sha256: str, max_bytes: int, cache: Path | None = None, label: str = "") -> Path:
    """The file at `url` whose sha256 is `sha256`, from the cache or downloaded and checked into it."""
    folder = (cache or cache_dir()) / "sha256"
    cached = folder / sha256
    if cached.is_file() and sha256_of(str(cached)) == sha256:
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".partial-", delete=False) as partial:
        try:

            def write(chunk: bytes) -> None:
                digest.update(chunk)
                partial.write(chunk)

            _fetch(url, max_bytes, write, label)
            partial.flush()  # no fsync: a cached file is hashed again before each use, so a torn one is fetched anew
            if digest.hexdigest() != sha256:
                raise VerificationError(
                    f"{label or url}: sha256 mismatch: expected {sha256}, got {digest.hexdigest()} "
                    f"({partial.tell()} bytes from {url}); the mirror serves a different or damaged file: "
                    "try another --mirror"
                )
            os.replace(partial.name, cached)
        finally:
            if os.path.exists(partial.name):
                os.unlink(partial.name)
    return cached


def _fetch(url: str, max_bytes: int, sink: Callable[[bytes], None], label: str = "") -> None:
    """Stream `url` into `sink`, retrying connection and server errors until the deadline."""
    import urllib.error

    deadline = time.monotonic() + DEADLINE
    received = [0]  # bytes the sink took: a try that broke after any may not be retried

    def counted(chunk: bytes) -> None:
        received[0] += len(chunk)
        sink(chunk)

    for attempt in range(1, ATTEMPTS + 1):
        try:
            _fetch_once(url, max_bytes, counted, deadline, label)
            return
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == ATTEMPTS:
                raise DownloadError(
                    f"{url}: HTTP {error.code} {error.reason}: "
                    "check --mirror and --release (is the file on that mirror?)"
                ) from None
            reason = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            if attempt == ATTEMPTS:
                cause = getattr(error, "reason", error)
                raise DownloadError(f"{url}: {cause}: check the network and --mirror") from None
            reason = str(getattr(error, "reason", error))
        if received[0]:  # the sink already holds part of the body: a retry would append a second copy
            raise DownloadError(f"{url}: the connection broke after {received[0]} bytes ({reason}); run it again")
        if time.monotonic() + attempt > deadline:
            raise DownloadError(f"{url}: no answer within {DEADLINE:g} s ({reason}); check the network and --mirror")
        time.sleep(attempt)


def _fetch_once(url: str, max_bytes: int, sink: Callable[[bytes], None], deadline: float, label: str) -> None:
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "kexec-bin"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        kind = response.headers.get("Content-Type", "")
        if kind.startswith("text/html"):
            raise DownloadError(
                f"{url}: the server sent an HTML page ({kind}), not the file: "
                "a captive portal or a mirror's error page? check --mirror"
            )
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > max_bytes:
            raise DownloadError(
                f"{url}: {total} bytes is more than the {max_bytes} expected at most; "
                "the mirror serves something else: check --mirror"
            )
        _copy(response, sink, max_bytes, total, deadline, url, label)


def _copy(
    response: BinaryIO,
    sink: Callable[[bytes], None],
    max_bytes: int,
    total: int | None,
    deadline: float,
    url: str,
    label: str,
) -> None:
    progress = _Progress(label or url.rsplit("/", 1)[-1], total) if sys.stderr.isatty() else None
    received = 0
    while True:
        chunk = response.read(CHUNK)
        if not chunk:
            break
        received += len(chunk)
        if received > max_bytes:
            raise DownloadError(f"{url}: more than the {max_bytes} bytes expected at most; check --mirror")
        if time.monotonic() > deadline:
            raise DownloadError(f"{url}: not complete within {DEADLINE:g} s; check the network or try another --mirror")
        sink(chunk)
        if progress:
            progress.show(received)
    if progress:
        progress.done(received)
    if total is not None and received != total:
        raise DownloadError(f"{url}: the server announced {total} bytes and sent {received}; run it again")


class _Progress:
    """One line on a terminal's stderr, rewritten at most ten times a second."""

    def __init__(self, name: str, total: int | None) -> None:
        self.name, self.total, self.shown = name, total, 0.0

    def show(self, received: int) -> None:
        now = time.monotonic()
        if now - self.shown >= 0.1:
            self.shown = now
            of = f" of {self.total / (1 << 20):.1f} MiB" if self.total else " MiB"
            print(f"\r{self.name}: {received / (1 << 20):.1f}{of}", end="", file=sys.stderr, flush=True)

    def done(self, received: int) -> None:
        print(f"\r{self.name}: {received / (1 << 20):.1f} MiB, done", file=sys.stderr, flush=True)
