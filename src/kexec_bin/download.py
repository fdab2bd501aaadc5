"""Downloads over HTTP(S) with the standard library: bounded, retried, and checked before use.

A file whose sha256 is known ahead (from a signed index) lands in a content-addressed cache,
`<cache>/downloads/sha256/<hash>`, and only after its hash matched: a bad or cut-off download
never enters the cache, and a cached file is used again without the network. A small signed
index whose hash nobody knows ahead (InRelease) is fetched fresh into memory each time.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import CacheError, DownloadError, KexecBinError, UsageError, VerificationError
from .resolve import sha256_of

TIMEOUT = 30.0  # seconds without a byte before a connection counts as stalled
DEADLINE = 30 * 60.0  # seconds for one file, retries included ($KEXEC_BIN_DOWNLOAD_DEADLINE overrides)
# The slowest a download may go, averaged over each window: a server that trickles a byte at a time
# never stalls long enough for TIMEOUT, so it is cut off by this rule (and by the deadline) instead.
MIN_RATE = 4096  # bytes per second
RATE_WINDOW = 60.0  # seconds
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
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = tempfile.NamedTemporaryFile(dir=folder, prefix=".partial-", delete=False)  # noqa: SIM115 - `with` below
    except OSError as error:
        raise cache_error(folder, error) from None
    with partial:
        try:
            digest = hashlib.sha256()

            def write(chunk: bytes) -> None:
                digest.update(chunk)
                try:
                    partial.write(chunk)
                except OSError as error:
                    raise cache_error(folder, error) from None

            # More bytes than the signed size cannot have the signed hash: a verification failure, not a network one.
            _fetch(url, max_bytes, write, label, oversize=VerificationError)
            try:
                partial.flush()  # no fsync: a cached file is hashed again before use, so a torn one is fetched anew
            except OSError as error:
                raise cache_error(folder, error) from None
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


def cache_error(folder: Path, error: OSError) -> CacheError:
    """The cache at `folder` cannot be written: why, and the two ways out."""
    return CacheError(
        f"cannot write the download cache {folder}: {error.strerror or error}; free space there, "
        "or point KEXEC_BIN_CACHE at a folder with room (the installer needs about 200 MiB)"
    )


def deadline_seconds() -> float:
    """DEADLINE, or $KEXEC_BIN_DOWNLOAD_DEADLINE when it is a positive number of seconds."""
    value = os.environ.get("KEXEC_BIN_DOWNLOAD_DEADLINE", "")
    try:
        seconds = float(value)
    except ValueError:
        return DEADLINE
    return seconds if 0 < seconds < float("inf") else DEADLINE


def check_url(url: str, option: str = "--mirror") -> str:
    """`url` without a trailing slash, if it is an http(s) or file URL a download can use; else UsageError.

    A folder path becomes its file:// URL. Credentials are refused (and not repeated): they would be
    shown in every plan and message, and urllib would send them in clear over http.
    """
    from urllib.parse import urlsplit

    def refuse(why: str) -> UsageError:
        shown = re.sub(r"//[^/@]*@", "//***@", url) if "@" in url else url
        return UsageError(f"{option} {shown!r}: {why}")

    if not url.isprintable() or any(character.isspace() for character in url):
        raise refuse("contains spaces or control characters; give a URL like http://HOST/debian")
    if not url.isascii():
        raise refuse("contains characters outside ASCII; percent-encode them (%C3%A9) or use the host's IDNA name")
    if "://" not in url:
        if os.path.isdir(url):
            return Path(url).resolve().as_uri()
        raise refuse("is neither a URL (http://, https://, file://) nor a folder holding dists/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here, not in the middle of a download
    except ValueError as error:
        raise refuse(f"is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https", "file"):
        raise refuse(f"the scheme {parts.scheme!r} is not supported; use http://, https:// or file://")
    if "@" in parts.netloc:
        raise refuse(
            "holds credentials; they would show in the plan and travel in clear: use a mirror "
            "that needs none, or a local proxy (apt-cacher-ng) that holds them"
        )
    if parts.scheme != "file" and not parts.hostname:
        raise refuse("names no host; give a URL like http://HOST/debian")
    return url.rstrip("/")


def _fetch(
    url: str,
    max_bytes: int,
    sink: Callable[[bytes], None],
    label: str = "",
    *,
    oversize: type[KexecBinError] = DownloadError,
) -> None:
    """Stream `url` into `sink`, retrying connection and server errors until the deadline."""
    import urllib.error

    seconds = deadline_seconds()
    deadline = time.monotonic() + seconds
    received = [0]  # bytes the sink took: a try that broke after any may not be retried

    def counted(chunk: bytes) -> None:
        received[0] += len(chunk)
        sink(chunk)

    for attempt in range(1, ATTEMPTS + 1):
        try:
            with _opened(url, deadline) as (read, total):
                if total is not None and total > max_bytes:
                    raise oversize(
                        f"{url}: {total} bytes is more than the {max_bytes} expected at most; "
                        "the mirror serves something else: check --mirror"
                    )
                _copy(read, counted, max_bytes, total, deadline, url, label, oversize)
            return
        except KexecBinError:
            raise
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == ATTEMPTS:
                raise DownloadError(
                    f"{url}: HTTP {error.code} {error.reason}: "
                    "check --mirror and --release (is the file on that mirror?)"
                ) from None
            reason = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError, ValueError) as error:  # ValueError: http.client's InvalidURL
            if attempt == ATTEMPTS:
                cause = getattr(error, "reason", error)
                raise DownloadError(f"{url}: {cause}: check the network and --mirror") from None
            reason = str(getattr(error, "reason", error))
        if received[0]:  # the sink already holds part of the body: a retry would append a second copy
            raise DownloadError(f"{url}: the connection broke after {received[0]} bytes ({reason}); run it again")
        if time.monotonic() + attempt > deadline:
            raise DownloadError(f"{url}: no answer within {seconds:g} s ({reason}); check the network and --mirror")
        time.sleep(attempt)


@contextmanager
def _opened(url: str, deadline: float) -> Iterator[tuple[Callable[[int], bytes], int | None]]:
    """The body at `url` as (a read function, its announced length): an HTTP(S) response, or for a
    file:// URL a regular file only (a FIFO or a device is refused, never waited on)."""
    import stat
    import urllib.request

    from .read import kind_of

    if url.startswith("file:"):
        path = urllib.request.url2pathname(url[len("file://") :] if url.startswith("file://") else url[len("file:") :])
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise DownloadError(
                f"{url}: no such file: check --mirror and --release (is the file on that mirror?)"
            ) from None
        with os.fdopen(descriptor, "rb") as file:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise DownloadError(
                    f"{url} is {kind_of(status.st_mode)}, not a regular file: a mirror serves files; check --mirror"
                )
            yield file.read, status.st_size
        return
    request = urllib.request.Request(url, headers={"User-Agent": "kexec-bin"})
    timeout = max(0.1, min(TIMEOUT, deadline - time.monotonic()))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        kind = response.headers.get("Content-Type", "")
        if kind.startswith("text/html"):
            raise DownloadError(
                f"{url}: the server sent an HTML page ({kind}), not the file: "
                "a captive portal or a mirror's error page? check --mirror"
            )
        length = response.headers.get("Content-Length")
        # read1: whatever has arrived, so the deadline and the rate are checked after every receive.
        yield response.read1, int(length) if length and length.isdigit() else None


def _copy(
    read: Callable[[int], bytes],
    sink: Callable[[bytes], None],
    max_bytes: int,
    total: int | None,
    deadline: float,
    url: str,
    label: str,
    oversize: type[KexecBinError] = DownloadError,
) -> None:
    progress = Progress(label or url.rsplit("/", 1)[-1], total) if sys.stderr.isatty() else None
    received = 0
    window_start, window_bytes = time.monotonic(), 0
    while True:
        chunk = read(CHUNK)
        now = time.monotonic()
        if now > deadline:
            raise DownloadError(
                f"{url}: not complete within the download deadline ({received} bytes so far); "
                "check the network or try another --mirror"
            )
        if not chunk:
            break
        received += len(chunk)
        window_bytes += len(chunk)
        if received > max_bytes:
            raise oversize(f"{url}: more than the {max_bytes} bytes expected at most; check --mirror")
        if now - window_start >= RATE_WINDOW:
            if window_bytes < MIN_RATE * (now - window_start):
                raise DownloadError(
                    f"{url}: the mirror sends {window_bytes / (now - window_start):.0f} bytes/s, slower than "
                    f"{MIN_RATE} bytes/s for {now - window_start:.0f} s; try another --mirror"
                )
            window_start, window_bytes = now, 0
        sink(chunk)
        if progress:
            progress.show(received)
    if progress:
        progress.done(received)
    if total is not None and received != total:
        raise DownloadError(f"{url}: the server announced {total} bytes and sent {received}; run it again")


class Progress:
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
