"""Mirrors → cache: download a release's tarball, verify its sha256, and keep it by content.

The cache entry appears (by an atomic rename) only once its sha256 matched, so a partial or
corrupt download is never used. A cached tarball is returned without any network I/O, but only
after its sha256 is checked again (as pip's --require-hashes and apt do): the cache is a folder
anyone with the user's rights can change. A download stops at the recipe's size and at an
overall deadline; credentials in a mirror URL never reach a log line or an error.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence
from urllib.parse import unquote, urlparse

from .commands import Log
from .digest import sha256_of
from .errors import BuildError, CacheError, FetchError
from .paths import cache_dir
from .recipes import Release

__all__ = [
    "MIRRORS_ENV",
    "cached_path",
    "candidate_urls",
    "clean_partials",
    "distribution_urls",
    "fetch",
    "mask_credentials",
    "mirrors_from_env",
]

MIRRORS_ENV = "KEXEC_BIN_MIRRORS"
CHUNK = 64 * 1024
RETRIED_STATUSES = (500, 502, 503, 504)
# The user:password@ (or token@) part of any URL in a text.
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def mirrors_from_env() -> list[str]:
    """The base URLs (or folders) in $KEXEC_BIN_MIRRORS, space-separated."""
    return os.environ.get(MIRRORS_ENV, "").split()


def cached_path(release: Release, cache: Path | None = None) -> Path:
    """Where the verified tarball of `release` lives in the content-addressed cache."""
    return (cache or cache_dir()) / "sources" / release.sha256 / release.source


def candidate_urls(release: Release, mirrors: Sequence[str]) -> list[str]:
    """The user's mirrors first (each holding the upstream file name), then the recipe's URLs."""
    return [f"{mirror.rstrip('/')}/{release.source}" for mirror in mirrors] + list(release.urls)


def mask_credentials(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by ****."""
    return _CREDENTIALS.sub("****@", text)


def fetch(
    release: Release,
    *,
    mirrors: Sequence[str] = (),
    cache: Path | None = None,
    timeout: tuple[float, float] = (10.0, 60.0),
    deadline: float = 600.0,
    retries: int = 3,
    log: Log = print,
) -> Path:
    """Return the cached tarball of `release`, downloading and verifying it first if needed.

    `timeout` is (connect, read) per request; `deadline` bounds one download as a whole.
    """

    def say(line: str) -> None:
        log(mask_credentials(line))

    target = cached_path(release, cache)
    if target.is_file():
        return _verified_entry(release, target)
    with _cache_errors(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / ".lock"):
        if target.is_file():  # another process fetched it while we waited
            return _verified_entry(release, target)
        failures: list[str] = []
        for url in _all_urls(release, mirrors, cache, failures):
            try:
                _download_verified(url, release, target, timeout=timeout, deadline=deadline, retries=retries, log=say)
                return target
            except CacheError:
                raise  # another source cannot help: the cache itself cannot take the file
            except FetchError as error:
                failures.append(f"  - {url}: {error}")
                say(f"fetch: {url}: {error}")
    raise FetchError(
        mask_credentials(
            f"could not fetch {release.source} (sha256 {release.sha256}) from any source:\n"
            + "\n".join(failures)
            + f"\nput the tarball on a mirror and name it with --mirror or ${MIRRORS_ENV}"
        )
    )


def _verified_entry(release: Release, path: Path) -> Path:
    """`path` if its bytes still have the recipe's sha256; else refuse it, saying how to recover."""
    with _cache_errors(path.parent):
        got = sha256_of(path)
    if got != release.sha256:
        raise CacheError(
            f"the cached {path} fails its hash check: expected sha256 {release.sha256} (the recipe's), "
            f"got {got} ({path.stat().st_size} bytes); it was changed after it was verified and cached "
            f"(damaged on disk, or replaced by someone), so it is not used. Remove it and fetch again: "
            f"rm {path} && inv fetch --version {release.version}"
        )
    return path


@contextmanager
def _cache_errors(folder: Path) -> Iterator[None]:
    """Turn an OSError on the cache into one `CacheError` that names the folder, the reason and the fix."""
    try:
        yield
    except OSError as error:
        where = error.filename or folder
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = (
                "free some space on that disk, or point $KEXEC_BIN_CACHE at another one "
                "(what is cached is intact: only the partial download is removed)"
            )
        elif error.errno in (errno.ENOTDIR, errno.EEXIST):
            fix = "a part of that path is a file, not a folder: point $KEXEC_BIN_CACHE at a folder"
        else:
            fix = "point $KEXEC_BIN_CACHE at a folder you can write"
        raise CacheError(f"the download cache cannot be used: {where}: {error.strerror}; {fix}") from None


def _all_urls(release: Release, mirrors: Sequence[str], cache: Path | None, failures: list[str]) -> Iterator[str]:
    """The candidate URLs, then (only if all failed) the distribution's orig tarball."""
    yield from candidate_urls(release, mirrors)
    if release.debian_package and shutil.which("apt-get"):
        try:
            with _cache_errors(cache or cache_dir()):  # the private apt root lives in the cache
                found = distribution_urls(release, cache)
        except BuildError as error:
            failures.append(f"  - the distribution's {release.debian_package} source package: {error}")
        else:
            yield from found


def distribution_urls(release: Release, cache: Path | None = None) -> list[str]:
    """Where the host's apt archive has this release's orig tarball (byte-identical to upstream)."""
    from .apt import PrivateApt

    apt = PrivateApt(
        (cache or cache_dir()) / "apt" / "sources", suites=release.debian_suites, architecture="all", types=("deb-src",)
    )
    return [
        remote.url
        for suite in release.debian_suites
        for remote in apt.source_files(release.debian_package, suite)
        if remote.name == release.debian_orig and remote.sha256 == release.sha256
    ][:1]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with _cache_errors(path.parent):  # only the open: an error under the lock is the caller's
        handle = open(path, "a")  # noqa: SIM115
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _download_verified(
    url: str, release: Release, target: Path, *, timeout: tuple[float, float], deadline: float, retries: int, log: Log
) -> None:
    """Stream `url` into a temporary file beside `target`; rename it in only if the sha256 matches.

    It stops as soon as more than the recipe's size arrived, or `deadline` seconds went by.
    """
    # Opened outside `with`: the try below removes the file whatever happens, and `with handle` closes it.
    with _cache_errors(target.parent):
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=target.parent, prefix=f".{release.source}.", suffix=".part", delete=False
        )
    partial = Path(handle.name)
    ends = time.monotonic() + deadline
    try:
        with handle:
            digest = hashlib.sha256()
            received = 0
            for chunk in _stream(url, timeout=timeout, retries=retries, log=log):
                received += len(chunk)
                if received > release.size:
                    raise FetchError(
                        f"sent more than the {release.size} bytes the recipe records for {release.source}; "
                        f"stopped there: the mirror serves another file (or an endless body)"
                    )
                if time.monotonic() > ends:
                    raise FetchError(
                        f"not finished within {deadline:g}s (the limit for one download); "
                        f"{received} bytes had arrived: the mirror is too slow"
                    )
                digest.update(chunk)
                with _cache_errors(target.parent):  # only the writes: a failed read is the source's fault
                    handle.write(chunk)
            with _cache_errors(target.parent):  # a full disk may show only when the data reaches it
                handle.flush()
                os.fsync(handle.fileno())
        got = digest.hexdigest()
        if got != release.sha256:
            raise FetchError(
                f"sha256 mismatch for {release.source}: expected {release.sha256}, got {got} "
                f"({received} bytes): the download is corrupt or truncated, or the "
                f"mirror holds another file; the recipe's hash is the authority"
            )
        with _cache_errors(target.parent):
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
    from urllib3.exceptions import HTTPError as TransportError
    from urllib3.exceptions import ReadTimeoutError

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
                    # read1 returns whatever arrived: the caller's deadline is checked however slow
                    # the trickle (a full-chunk read would wait for 64 KiB at any pace).
                    while chunk := response.raw.read1(CHUNK, decode_content=True):
                        started = True
                        received += len(chunk)
                        advance(len(chunk))
                        yield chunk
                if expected and received != expected:
                    raise FetchError(f"truncated: received {received} of {expected} bytes")
                return
        except ReadTimeoutError:
            raise FetchError(f"no answer within {timeout[1]:g}s (read timeout)") from None
        except (_Retry, requests.ConnectionError, TransportError) as error:
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
    text = mask_credentials(str(error))
    for marker, short in _SHORT_REASONS.items():
        if marker in text:
            return short
    return text.splitlines()[0][:200] if text else type(error).__name__


@contextmanager
def _progress(url: str, total: int) -> Iterator[Callable[[int], object]]:
    """A progress bar on a terminal; a line at start and end otherwise."""
    name = url.rsplit("/", 1)[-1]
    if sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=total or None, unit="B", unit_scale=True, desc=name, leave=False) as bar:
            yield bar.update
    else:
        print(mask_credentials(f"fetch: downloading {url}") + (f" ({total} bytes)" if total else ""), file=sys.stderr)
        yield lambda size: None


def clean_partials(cache: Path | None = None) -> int:
    """Remove partial downloads left by an interrupted fetch; return how many."""
    removed = 0
    for partial in ((cache or cache_dir()) / "sources").glob("*/.*.part"):
        partial.unlink(missing_ok=True)
        removed += 1
    return removed
