"""A Debian mirror's netboot files, real: the archive's signed InRelease and installer SHA256SUMS, and
the netboot kernel and initrd from Debian's debian-installer-<N>-netboot-<arch> package.

The archive's dists/ metadata is reachable from here (through the host's own apt sources), its
dists/…/images/ files are not; the package carries the same bytes, which `files` checks against
SHA256SUMS. `pool_files` is the other layout a mirror can have: dists/ and pool/ only (InRelease,
Packages.xz and the package itself). Everything is kept in the user's cache, so later runs work
offline and see one consistent snapshot. `serve` puts them on a loopback HTTP server (the tests,
the VM proof and `inv bench` boot the installer from it). Signatures are read through the runtime's
own `kexec_bin.debian.archive`: Debian's protocol is written once.
"""

from __future__ import annotations

import hashlib
import http.server
import lzma
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Optional, Tuple, Union

from kexec_bin.debian import archive
from kexec_bin.debian.installer import IMAGES

from .. import atomic
from ..apt import host_archives
from . import debian_packages


def number(suite: str) -> str:
    """The release number of `suite` (13 for trixie), from the Version of its signed Release file."""
    return _matched(rb"^Version: (\d+)", _signed_text(archive_file(f"dists/{suite}/InRelease")).encode())


def files(suite: str, arch: str) -> dict[str, bytes]:
    """Mirror path (under the archive root) → bytes: InRelease (also under its suite alias), SHA256SUMS,
    kernel, initrd."""
    images = f"main/installer-{arch}/current/images"
    release_number = number(suite)
    package = f"debian-installer-{release_number}-netboot-{arch}"
    tree = debian_packages.unpacked(package, arch, suite)
    (folder,) = tree.glob(f"usr/lib/debian-installer/images/{release_number}/{arch}/text")
    kernel_name, initrd_name = IMAGES[arch]
    kernel = (folder / kernel_name.removeprefix("netboot/")).read_bytes()
    initrd = (folder / initrd_name.removeprefix("netboot/")).read_bytes()
    metadata = _metadata(suite, images, refresh=False)
    if not _lists(metadata["SHA256SUMS"], kernel_name, kernel):
        metadata = _metadata(suite, images, refresh=True)
    if not _lists(metadata["SHA256SUMS"], kernel_name, kernel):
        raise RuntimeError(
            f"{package} in the cache is older than the archive's installer; "
            f"remove {debian_packages.CACHE / 'debian' / suite / arch / package} and run again"
        )
    inrelease = metadata["InRelease"]
    alias = _matched(rb"^Suite: (\S+)$", inrelease)
    return {
        f"dists/{suite}/InRelease": inrelease,
        f"dists/{alias}/InRelease": inrelease,
        f"dists/{suite}/{images}/SHA256SUMS": metadata["SHA256SUMS"],
        f"dists/{suite}/{images}/{kernel_name}": kernel,
        f"dists/{suite}/{images}/{initrd_name}": initrd,
    }


# What the mirror answers for a path: its bytes, or a hostile answer (the fuzz's and the refusal tests'):
# (bytes, Content-Type, HTTP status, the Content-Length announced or None, seconds between single bytes).
Answer = Union[bytes, Tuple[bytes, str, int, Optional[int], float]]


@contextmanager
def serve(files: Mapping[str, Answer], address: str = "127.0.0.1", log: list[str] | None = None) -> Iterator[str]:
    """Serve `files` (path → answer; read on every request, so a caller may change them between
    requests) under /debian/ on `address`, an ephemeral port; yield the mirror URL. Each request's
    path is appended to `log` if one is given."""
    stop = threading.Event()

    class Mirror(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if log is not None:
                log.append(self.path)
            found = files.get(self.path[len("/debian/") :]) if self.path.startswith("/debian/") else None
            if found is None:
                self.send_error(404)
                return
            data, kind, status, length, pause = (
                found if isinstance(found, tuple) else (found, "application/octet-stream", 200, len(found), 0.0)
            )
            self.send_response(status)
            self.send_header("Content-Type", kind)
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            try:
                if not pause:
                    self.wfile.write(data)
                    return
                for index in range(len(data)):
                    if stop.wait(pause):
                        return
                    self.wfile.write(data[index : index + 1])
                    self.wfile.flush()
            except OSError:  # the client gave up on this answer, as a client cut off by its deadline does
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((address, 0), Mirror)
    server.daemon_threads = True
    # shutdown() waits for the loop's next poll: a short one, as each test starts and stops mirrors of its own.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_port}/debian"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_sha256(inrelease: bytes, path: str) -> str:
    """The sha256 InRelease lists for `path` (read from the signed text)."""
    release = next(archive.stanzas(_signed_text(inrelease).splitlines()))
    return archive.checksums(release["SHA256"])[path][0]


def _signed_text(inrelease: bytes) -> str:
    return archive.gpgv(inrelease, [archive.HOST_KEYRING], "InRelease").text


def _matched(pattern: bytes, text: bytes) -> str:
    """The first group of `pattern`'s first match in `text` (a line of InRelease); an error when there is none."""
    found = re.search(pattern, text, re.M)
    if found is None:
        raise RuntimeError(f"InRelease has no line matching {pattern!r}: the archive changed its format")
    return found.group(1).decode()


def signers(inrelease: bytes) -> list[str]:
    """The primary-key fingerprints of the good signatures on `inrelease`, with Debian's keyring."""
    verified = archive.gpgv(inrelease, [archive.HOST_KEYRING], "InRelease")
    return [signer.rsplit("[", 1)[1].rstrip("]") for signer in verified.signers]


def resign(inrelease: bytes) -> bytes:
    """The same Release text, clear-signed by a throwaway key made here instead of Debian's."""
    with ThrowawayKeys() as keys:
        return keys.sign(_signed_text(inrelease).encode(), [keys.make("Throwaway Archive Key")])


class ThrowawayKeys:
    """OpenPGP keys made for one test, in a gpg home of their own: they sign a Release text (one key or
    several at once), and `keyring` exports some of them as a keyring gpgv reads."""

    def __enter__(self) -> ThrowawayKeys:
        # A home under the short temporary folder: gpg-agent's socket lives in it, and a socket path
        # over 107 bytes (a deep pytest basetemp) makes key generation fail.
        self.home = tempfile.mkdtemp(prefix="gpg-")
        self.gpg = ["gpg", "--homedir", self.home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["gpgconf", "--homedir", self.home, "--kill", "all"], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)

    def make(self, name: str) -> str:
        """A new signing key for `name`; its fingerprint."""
        subprocess.run(
            [*self.gpg, "--quick-gen-key", f"{name} <nobody@example.invalid>", "ed25519", "sign", "1d"],
            capture_output=True,
            check=True,
        )
        listing = subprocess.run(
            [*self.gpg, "--with-colons", "--list-keys", f"{name} <nobody@example.invalid>"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        return _matched(rb"^fpr:+([0-9A-F]{40}):", listing.encode())

    def sign(self, text: bytes, fingerprints: list[str]) -> bytes:
        """`text` clear-signed by each of `fingerprints`, as InRelease is."""
        users = [word for fingerprint in fingerprints for word in ("--local-user", fingerprint)]
        return subprocess.run([*self.gpg, *users, "--clearsign"], input=text, capture_output=True, check=True).stdout

    def keyring(self, fingerprints: list[str], path: Path) -> Path:
        """A keyring holding the public keys `fingerprints`, written to `path`."""
        exported = subprocess.run([*self.gpg, "--export", *fingerprints], capture_output=True, check=True).stdout
        path.write_bytes(exported)
        return path


def pool_files(suite: str, arch: str) -> dict[str, bytes]:
    """A mirror of dists/ and pool/ only, as partial mirrors and package caches are: mirror path → bytes
    of InRelease, main/binary-<arch>/Packages.xz and the netboot package's .deb it names."""
    index = f"main/binary-{arch}/Packages.xz"
    inrelease = archive_file(f"dists/{suite}/InRelease")
    packages = archive_file(f"dists/{suite}/{index}")
    if sha256(packages) != signed_sha256(inrelease, index):
        inrelease = archive_file(f"dists/{suite}/InRelease", refresh=True)
        packages = archive_file(f"dists/{suite}/{index}", refresh=True)
    name = f"debian-installer-{number(suite)}-netboot-{arch}"
    text = lzma.decompress(packages).decode(errors="replace")
    (stanza,) = archive.stanzas_of(text, name)
    deb = debian_packages.deb(name, arch, suite).read_bytes()
    if sha256(deb) != stanza["SHA256"]:  # the cached package is older than the index: take the archive's
        deb = archive_file(stanza["Filename"])
    return {f"dists/{suite}/InRelease": inrelease, f"dists/{suite}/{index}": packages, stanza["Filename"]: deb}


def archive_file(path: str, *, refresh: bool = False) -> bytes:
    """`path` under the host's Debian archive, kept in the cache (fetched again with `refresh`)."""
    target = debian_packages.CACHE / "netboot-mirror" / "archive" / path
    if refresh or not target.exists():
        with urllib.request.urlopen(f"{host_archives()[0].uri.rstrip('/')}/{path}", timeout=600) as response:
            data = response.read()
        atomic.write_bytes(target, data)
        return data
    return target.read_bytes()


def _metadata(suite: str, images: str, *, refresh: bool) -> dict[str, bytes]:
    return {
        "InRelease": archive_file(f"dists/{suite}/InRelease", refresh=refresh),
        "SHA256SUMS": archive_file(f"dists/{suite}/{images}/SHA256SUMS", refresh=refresh),
    }


def _lists(sums: bytes, name: str, data: bytes) -> bool:
    return f"{sha256(data)}  ./{name}".encode() in sums
