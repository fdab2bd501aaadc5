"""Mirrors → cache: download a release's tarball, verify its sha256, and keep it by content.

The cache entry appears (by an atomic rename) only once its sha256 matched, so a partial or
corrupt download is never used. A cached tarball is returned without any network I/O.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence
from urllib.parse import unquote, urlparse

from .commands import Log
from .errors import BuildError, FetchError
from .paths import cache_dir
from .recipes import Release

__all__ = ["fetch", "cached_path", "candidate_urls", "distribution_urls", "mirrors_from_env", "clean_partials", "MIRRORS_ENV"]

MIRRORS_ENV = "KEXEC_BIN_MIRRORS"
CHUNK = 64 * 1024
RETRIED_STATUSES = (500, 502, 503, 504)



def mirrors_from_env() -> list[str]:
    """The base URLs (or folders) in $KEXEC_BIN_MIRRORS, space-separated."""
    return os.environ.get(MIRRORS_ENV, "").split()


def cached_path(release: Release, cache: Path | None = None) -> Path:
    """Where the verified tarball of `release` lives in the content-addressed cache."""
    return (cache or cache_dir()) / "sources" / release.sha256 / release.source


def candidate_urls(release: Release, mirrors: Sequence[str]) -> list[str]:
    """The user's mirrors first (each holding the upstream file name), then the recipe's URLs."""
    return [f"{mirror.rstrip('/')}/{release.source}" for mirror in mirrors] + list(release.urls)


def fetch(release: Release, *, mirrors: Sequence[str] = (), cache: Path | None = None,
          timeout: tuple[float, float] = (10.0, 60.0), retries: int = 3, log: Log = print) -> Path:
    """Return the cached tarball of `release`, downloading and verifying it first if needed."""
    target = cached_path(release, cache)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / ".lock"):
        if target.is_file():  # another process fetched it while we waited
            return target
        failures = []
        for url in _all_urls(release, mirrors, cache, failures):
            try:
                _download_verified(url, release, target, timeout=timeout, retries=retries, log=log)
                return target
            except FetchError as error:
                failures.append(f"  - {url}: {error}")
                log(f"fetch: {url}: {error}")
    raise FetchError(
        f"could not fetch {release.source} (sha256 {release.sha256}) from any source:\n"
        + "\n".join(failures)
        + f"\nput the tarball on a mirror and name it with --mirror or ${MIRRORS_ENV}"
    )


def _all_urls(release: Release, mirrors: Sequence[str], cache: Path | None, failures: list[str]) -> Iterator[str]:
    """The candidate URLs, then (only if all failed) the distribution's orig tarball."""
    yield from candidate_urls(release, mirrors)
    if release.debian_package and shutil.which("apt-get"):
        try:
            yield from distribution_urls(release, cache)
        except BuildError as error:
            failures.append(f"  - the distribution's {release.debian_package} source package: {error}")


def distribution_urls(release: Release, cache: Path | None = None) -> list[str]:
    """Where the host's apt archive has this release's orig tarball (byte-identical to upstream)."""
    from .apt import PrivateApt

    apt = PrivateApt((cache or cache_dir()) / "apt" / "sources", suites=release.debian_suites,
                     architecture="all", types=("deb-src",))
    return [
        remote.url
        for suite in release.debian_suites
        for remote in apt.source_files(release.debian_package, suite)
        if remote.name == release.debian_orig and remote.sha256 == release.sha256
    ][:1]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _download_verified(url: str, release: Release, target: Path, *, timeout: tuple[float, float],
                       retries: int, log: Log) -> None:
    """Stream `url` into a temporary file beside `target`; rename it in only if the sha256 matches."""
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{release.source}.", suffix=".part", delete=False)
    partial = Path(handle.name)
    try:
        with handle:
            digest = hashlib.sha256()
            for chunk in _stream(url, timeout=timeout, retries=retries, log=log):
                digest.update(chunk)
                handle.write(chunk)
        got = digest.hexdigest()
        if got != release.sha256:
            raise FetchError(
                f"sha256 mismatch for {release.source}: expected {release.sha256}, got {got} "
                f"({partial.stat().st_size} bytes): the download is corrupt or truncated, or the "
                f"mirror holds another file; the recipe's hash is the authority"
            )
        os.replace(partial, target)
        log(f"fetch: {release.source} verified (sha256 {got[:12]}…) from {url}")
    finally:
        partial.unlink(missing_ok=True)


def _stream(url: str, *, timeout: tuple[float, float], retries: int, log: Log) -> Iterator[bytes]:
    """Yield the body of `url` in chunks: a local folder or file:// URL, or HTTP(S) via requests."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        yield from _stream_file(Path(unquote(parsed.path)))
    else:
        yield from _stream_http(url, timeout=timeout, retries=retries, log=log)


def _stream_file(path: Path) -> Iterator[bytes]:
    try:
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                yield chunk
    except OSError as error:
        raise FetchError(f"cannot read {path}: {error.strerror}") from None


def _stream_http(url: str, *, timeout: tuple[float, float], retries: int, log: Log) -> Iterator[bytes]:
    import requests  # only a real download pays for importing requests

    for attempt in range(retries + 1):
        started = False  # once bytes went out, a retry would splice two bodies: fail instead
        try:
            with requests.get(url, stream=True, timeout=timeout) as response:
                if response.status_code in RETRIED_STATUSES and attempt < retries:
                    raise _Retry(f"HTTP {response.status_code}")
                if response.status_code != 200:
                    raise FetchError(f"HTTP {response.status_code} {response.reason}")
                expected = int(response.headers.get("Content-Length") or 0)
                received = 0
                with _progress(url, expected) as advance:
                    for chunk in response.iter_content(CHUNK):
                        started = True
                        received += len(chunk)
                        advance(len(chunk))
                        yield chunk
                if expected and received != expected:
                    raise FetchError(f"truncated: received {received} of {expected} bytes")
                return
        except (_Retry, requests.ConnectionError) as error:
            if started:
                raise FetchError(f"interrupted after some bytes: {_reason(error)}") from None
            if attempt == retries:
                raise FetchError(f"failed after {retries + 1} attempts: {_reason(error)}") from None
            delay = 0.5 * 2**attempt
            log(f"fetch: {url}: {_reason(error)}; retrying in {delay:g}s")
            time.sleep(delay)
        except requests.Timeout:
            raise FetchError(f"no answer within {timeout[1]:g}s (read timeout)") from None
        except requests.RequestException as error:
            raise FetchError(_reason(error)) from None


class _Retry(Exception):
    """A server error worth another attempt."""


_SHORT_REASONS = {
    "Read timed out": "no answer (read timeout)",
    "NameResolutionError": "cannot resolve the host name",
    "Connection refused": "connection refused",
    "ConnectTimeout": "no connection (connect timeout)",
}


def _reason(error: Exception) -> str:
    text = str(error)
    for marker, short in _SHORT_REASONS.items():
        if marker in text:
            return short
    return text.splitlines()[0][:200] if text else type(error).__name__


@contextmanager
def _progress(url: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal; a line at start and end otherwise."""
    name = url.rsplit("/", 1)[-1]
    if sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=total or None, unit="B", unit_scale=True, desc=name, leave=False) as bar:
            yield bar.update
    else:
        print(f"fetch: downloading {url}" + (f" ({total} bytes)" if total else ""), file=sys.stderr)
        yield lambda size: None


def clean_partials(cache: Path | None = None) -> int:
    """Remove partial downloads left by an interrupted fetch; return how many."""
    removed = 0
    for partial in ((cache or cache_dir()) / "sources").glob("*/.*.part"):
        partial.unlink(missing_ok=True)
        removed += 1
    return removed

