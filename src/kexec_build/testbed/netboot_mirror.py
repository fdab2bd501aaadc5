"""A Debian mirror's netboot files, real: the archive's signed InRelease and installer SHA256SUMS, and
the netboot kernel and initrd from Debian's debian-installer-<N>-netboot-<arch> package.

The archive's dists/ metadata is reachable from here (through the host's own apt sources), its
dists/…/images/ files are not; the package carries the same bytes, which `files` checks against
SHA256SUMS. Everything is kept in the user's cache, so later runs work offline and see one
consistent snapshot. `serve` puts them on a loopback HTTP server (the tests, the VM proof and
`inv bench` boot the installer from it).
"""

from __future__ import annotations

import hashlib
import http.server
import re
import subprocess
import tempfile
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from kexec_bin import debian

from ..apt import host_archives
from . import debian_packages

RELEASE_NUMBERS = {codename: number for number, codename in debian.NUMBERS.items()}


def files(suite: str, arch: str) -> dict[str, bytes]:
    """Mirror path (under the archive root) → bytes: InRelease (also under its suite alias), SHA256SUMS,
    kernel, initrd."""
    images = f"main/installer-{arch}/current/images"
    package = f"debian-installer-{RELEASE_NUMBERS[suite]}-netboot-{arch}"
    tree = debian_packages.unpacked(package, arch, suite)
    (folder,) = tree.glob(f"usr/lib/debian-installer/images/{RELEASE_NUMBERS[suite]}/{arch}/text")
    kernel_name, initrd_name = debian.IMAGES[arch]
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


@contextmanager
def serve(files: Mapping[str, bytes], address: str = "127.0.0.1") -> Iterator[str]:
    """Serve `files` (path → bytes) under /debian/ on `address`, an ephemeral port; yield the mirror URL."""

    class Mirror(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = files.get(self.path[len("/debian/") :]) if self.path.startswith("/debian/") else None
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((address, 0), Mirror)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_port}/debian"
    finally:
        server.shutdown()
        server.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_sha256(inrelease: bytes, path: str) -> str:
    """The sha256 InRelease lists for `path`."""
    return _matched(rb"^ ([0-9a-f]{64}) +\d+ " + re.escape(path.encode()) + rb"$", inrelease)


def _matched(pattern: bytes, text: bytes) -> str:
    """The first group of `pattern`'s first match in `text` (a line of InRelease); an error when there is none."""
    found = re.search(pattern, text, re.M)
    if found is None:
        raise RuntimeError(f"InRelease has no line matching {pattern!r}: the archive changed its format")
    return found.group(1).decode()


def signers(inrelease: bytes) -> list[str]:
    """The primary-key fingerprints gpg finds good signatures from, with Debian's keyring."""
    with tempfile.TemporaryDirectory() as home:
        status = subprocess.run(
            [
                "gpg",
                "--homedir",
                home,
                "--no-default-keyring",
                "--keyring",
                debian.HOST_KEYRING,
                "--status-fd",
                "1",
                "--verify",
            ],
            input=inrelease,
            capture_output=True,
        ).stdout.decode()
    return re.findall(r"^\[GNUPG:\] VALIDSIG .* (\w+)$", status, re.M)


def resign(inrelease: bytes) -> bytes:
    """The same Release text, clear-signed by a throwaway key made here instead of Debian's."""
    # A home of its own under the short temporary folder: gpg-agent's socket lives in it, and a
    # socket path over 107 bytes (a deep pytest basetemp) makes key generation fail.
    with tempfile.TemporaryDirectory(prefix="gpg-") as home:
        gpg = ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
        text = subprocess.run(
            [*gpg, "--no-default-keyring", "--keyring", debian.HOST_KEYRING, "--decrypt"],
            input=inrelease,
            capture_output=True,
            check=True,
        ).stdout
        try:
            subprocess.run(
                [*gpg, "--quick-gen-key", "Throwaway Archive Key <nobody@example.invalid>", "ed25519", "sign", "1d"],
                capture_output=True,
                check=True,
            )
            return subprocess.run([*gpg, "--clearsign"], input=text, capture_output=True, check=True).stdout
        finally:  # gpg started an agent for this home; it would outlive the test
            subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)


def _metadata(suite: str, images: str, *, refresh: bool) -> dict[str, bytes]:
    folder = debian_packages.CACHE / "netboot-mirror" / suite / images.replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {"InRelease": f"dists/{suite}/InRelease", "SHA256SUMS": f"dists/{suite}/{images}/SHA256SUMS"}
    for name, path in wanted.items():
        target = folder / name
        if refresh or not target.exists():
            with urllib.request.urlopen(f"{host_archives()[0].uri.rstrip('/')}/{path}", timeout=60) as response:
                data = response.read()
            with tempfile.NamedTemporaryFile(dir=folder, delete=False) as partial:
                partial.write(data)
            Path(partial.name).replace(target)
    return {name: (folder / name).read_bytes() for name in wanted}


def _lists(sums: bytes, name: str, data: bytes) -> bool:
    return f"{sha256(data)}  ./{name}".encode() in sums
