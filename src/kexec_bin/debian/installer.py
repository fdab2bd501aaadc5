"""The Debian installer's netboot kernel and initrd, along either of Debian's two signed paths.

    images path   InRelease ─► main/installer-<arch>/current/images/SHA256SUMS ─► linux, initrd.gz
    pool path     InRelease ─► main/binary-<arch>/Packages.xz (else binary-all) ─► the .deb of
                  debian-installer-<N>-netboot-<arch> (its sha256) ─► linux and initrd.gz of the text
                  flavour, taken out of its data.tar.* here

Partial mirrors and package caches (apt-cacher-ng, aptly snapshots, corporate mirrors) carry dists/
and pool/ but often not the installer images, or a stale copy of them: then the pool path is taken,
and the plan says why. Debian builds both from the same files, byte for byte. No step is skipped:
a file is used only once every link above it held, and everything lands in the content-addressed
cache (`<cache>/sha256/<hash>`), so a second plan needs only a fresh InRelease.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .._architectures import DEBIAN as MACHINES  # `uname -m` → Debian architecture (recipes/targets.toml)
from ..download import Progress, cache_dir, cache_error, fetch_file
from ..errors import DownloadError, KexecBinError, PlanError, VerificationError
from ..resolve import sha256_of
from . import xz
from .archive import Release, stanzas

# Where each architecture's netboot kernel and initrd sit under installer-<arch>/current/images/
# (read from the archive's SHA256SUMS files), and under the text flavour's folder of the netboot
# package. armel and mips64el ship per-board images only, no generic one.
IMAGES = {
    "amd64": ("netboot/debian-installer/amd64/linux", "netboot/debian-installer/amd64/initrd.gz"),
    "arm64": ("netboot/debian-installer/arm64/linux", "netboot/debian-installer/arm64/initrd.gz"),
    "i386": ("netboot/debian-installer/i386/linux", "netboot/debian-installer/i386/initrd.gz"),
    "riscv64": ("netboot/debian-installer/riscv64/linux", "netboot/debian-installer/riscv64/initrd.gz"),
    "ppc64el": ("netboot/debian-installer/ppc64el/vmlinux", "netboot/debian-installer/ppc64el/initrd.gz"),
    "armhf": ("netboot/vmlinuz", "netboot/initrd.gz"),
    "s390x": ("generic/kernel.debian", "generic/initrd.debian"),
}
MAX_SUMS = 1 << 20
MAX_IMAGE = 512 << 20
MAX_PACKAGES_XZ = 64 << 20
MAX_DEB = 1 << 30
PACKAGES_BLOCK = 4 << 20  # bytes of decompressed Packages searched at once
TAR_BUFFER = 1 << 20  # bytes tarfile hands the decompressor at once (its default, 10 KiB, is slow)
# The text flavour of the netboot package, as its data.tar names it (the gtk flavour has a graphical installer).
TEXT_FOLDER = "./usr/lib/debian-installer/images/{number}/{arch}/text/"
# data.tar compressions the standard library reads in a stream (zstd only from Python 3.14 on).
TAR_MODES = {"data.tar.xz": "r|xz", "data.tar.gz": "r|gz", "data.tar.bz2": "r|bz2", "data.tar": "r|"}


@dataclass(frozen=True)
class VerifiedFile:
    path: Path
    url: str
    sha256: str
    check: str


@dataclass(frozen=True)
class Installer:
    """The verified kernel and initrd, the path they came by, and the plan's words for each link."""

    kernel: VerifiedFile
    initrd: VerifiedFile
    path: str
    """"images" or "pool"."""
    decisions: tuple[str, ...]


def machine_arch(machine: str | None = None) -> str:
    """The Debian architecture of this machine (`uname -m`)."""
    machine = machine or os.uname().machine
    try:
        return MACHINES[machine]
    except KeyError:
        raise PlanError(
            f"this machine is {machine}: Debian ships no netboot installer for it "
            f"(architectures with one: {', '.join(IMAGES)})"
        ) from None


def installer_files(
    mirror: str,
    release: Release,
    arch: str,
    *,
    cache: Path | None = None,
    accept_kernel: Callable[[str], object] | None = None,
) -> Installer:
    """The netboot kernel and initrd for `arch`: by the images path, else by the pool path (saying why).

    `accept_kernel(path)` raises when this host would refuse the kernel (Secure Boot): on the images
    path it runs before the initrd is downloaded; the pool path has both in the one package.
    """
    if arch not in IMAGES:
        raise PlanError(
            f"--arch {arch}: Debian ships no generic netboot installer for it; choose one of {', '.join(IMAGES)}"
        )
    cache = cache or cache_dir()
    by_images = _from_images(mirror, release, arch, cache, accept_kernel)
    if isinstance(by_images, Installer):
        return by_images
    reason, images_error = by_images
    try:
        found = _from_pool(mirror, release, arch, cache, reason)
    except (DownloadError, PlanError) as pool_error:  # a VerificationError is neither: it is raised as it is
        # The pool offers no way round: the images path's own failure is the one to name.
        raise type(images_error)(f"{images_error} (no package pool to fall back on: {_short(pool_error)})") from None
    if accept_kernel:
        accept_kernel(str(found.kernel.path))
    return found


def _from_images(
    mirror: str, release: Release, arch: str, cache: Path, accept_kernel: Callable[[str], object] | None
) -> Installer | tuple[str, KexecBinError]:
    """The files by the images path, or why that path cannot be used: a short reason for the plan,
    and the full error for when the pool path fails too."""
    images = f"main/installer-{arch}/current/images"
    listed = release.sha256.get(f"{images}/SHA256SUMS")
    if not listed:
        available = sorted(
            {
                key.split("/")[1][len("installer-") :]
                for key in release.sha256
                if re.fullmatch(r"main/installer-[\w-]+/current/images/SHA256SUMS", key)
            }
        )
        return f"InRelease lists no {images}/SHA256SUMS", PlanError(
            f"Debian {release.codename} ships no installer for {arch} "
            f"(its InRelease lists installers for {', '.join(available) or 'none'}): choose another --release"
        )
    base = f"{mirror}/dists/{release.codename}/{images}"
    sums_sha256, sums_size = listed
    try:
        sums_path = fetch_file(
            f"{base}/SHA256SUMS",
            sha256=sums_sha256,
            max_bytes=max(sums_size, 1),
            cache=cache,
            label=f"{arch} SHA256SUMS",
        )
    except VerificationError as error:
        return "images/SHA256SUMS does not match InRelease (stale mirror)", error
    except DownloadError as error:
        return f"images/SHA256SUMS cannot be fetched ({_short(error)})", error
    table = {}
    for line in sums_path.read_text(errors="replace").splitlines():
        digest, _, name = line.partition(" ")
        name = name.strip().lstrip("*")
        table[name[2:] if name.startswith("./") else name] = digest
    files: list[VerifiedFile] = []
    for image in IMAGES[arch]:
        listed_digest = table.get(image)
        if not listed_digest:
            return f"images/SHA256SUMS does not list {image}", VerificationError(
                f"{base}/SHA256SUMS does not list {image}: the installer's layout changed or the mirror "
                "is incomplete; check --mirror"
            )
        url = f"{base}/{image}"
        try:
            path = fetch_file(url, sha256=listed_digest, max_bytes=MAX_IMAGE, cache=cache, label=image)
        except VerificationError as error:
            return f"images/{image} does not match SHA256SUMS (stale or damaged mirror)", error
        except DownloadError as error:
            return f"images/{image} cannot be fetched ({_short(error)})", error
        if accept_kernel and not files:  # the kernel, before the initrd is downloaded
            accept_kernel(str(path))
        files.append(
            VerifiedFile(
                path,
                url,
                listed_digest,
                f"sha256 {listed_digest} listed in SHA256SUMS (itself checked against InRelease)",
            )
        )
    kernel, initrd = files
    return Installer(
        kernel,
        initrd,
        "images",
        (f"images path: SHA256SUMS {base}/SHA256SUMS: sha256 {sums_sha256} listed in {release.url}",),
    )


def _short(error: Exception) -> str:
    """An error's message without the advice after its first colon-separated cause."""
    return str(error).split(": check", 1)[0]


@dataclass(frozen=True)
class Package:
    """A package's stanza in a verified Packages index: enough to fetch and check its .deb."""

    name: str
    version: str
    filename: str
    size: int
    sha256: str
    number: str
    """The installer's release number in its name (13 for debian-installer-13-netboot-amd64)."""
    index: str
    """The Packages index it was found in, under dists/<suite>/."""


def _from_pool(mirror: str, release: Release, arch: str, cache: Path, reason: str) -> Installer:
    package = netboot_package(mirror, release, arch, cache)
    deb_url = f"{mirror}/{package.filename}"
    kernel_name, initrd_name = (
        image[len("netboot/") :] if image.startswith("netboot/") else image for image in IMAGES[arch]
    )
    folder = TEXT_FOLDER.format(number=package.number, arch=arch)
    wanted = {folder + kernel_name, folder + initrd_name}
    extracted = _extracted_before(package.sha256, wanted, cache)
    if extracted is None:
        label = package.filename.rsplit("/", 1)[-1]
        deb = fetch_file(deb_url, sha256=package.sha256, max_bytes=package.size, cache=cache, label=label)
        extracted = extract(deb, package.sha256, wanted, cache, label)
        # The kernel and initrd are kept by the package's sha256 (_extracted_before), so the next plan
        # needs no .deb: 150 MB less on a disk that must still hold the joined initrd and the install.
        deb.unlink()
    origin = (
        f"from data.tar of {package.name} {package.version} (.deb sha256 {package.sha256} listed in "
        f"{package.index}, itself listed in InRelease)"
    )
    kernel, initrd = (
        VerifiedFile(path, f"{deb_url}#{name}", path.name, f"sha256 {path.name} {origin}")
        for name, path in ((name, extracted[folder + name]) for name in (kernel_name, initrd_name))
    )
    return Installer(
        kernel,
        initrd,
        "pool",
        (f"pool path: {reason}: using the signed package {package.name} {package.version} instead",),
    )


def netboot_package(mirror: str, release: Release, arch: str, cache: Path) -> Package:
    """The stanza of debian-installer-<N>-netboot-<arch> in the first Packages.xz that verifies:
    binary-<arch>, then binary-all (Debian lists architecture-all packages in both)."""
    tried, failed = [], False
    for index in (f"main/binary-{arch}/Packages.xz", "main/binary-all/Packages.xz"):
        listed = release.sha256.get(index)
        if not listed:
            tried.append(f"{index}: not listed in InRelease")
            continue
        sha256, size = listed
        remembered = cache / "packages" / f"{sha256}-{arch}.json"
        if remembered.is_file():
            try:
                return Package(**json.loads(remembered.read_text()))
            except (ValueError, TypeError):
                pass  # a damaged note: the index is read again
        try:
            path = fetch_file(
                f"{mirror}/dists/{release.codename}/{index}", sha256=sha256, max_bytes=size, cache=cache, label=index
            )
        except VerificationError as error:
            tried.append(f"{index}: {_short(error)}")
            failed = True
            continue
        except DownloadError as error:
            tried.append(f"{index}: {_short(error)}")
            continue
        found = _find_netboot(path, arch, index)
        if found is None:
            tried.append(f"{index}: no debian-installer-N-netboot-{arch} in it")
            continue
        _write_json(remembered, found.__dict__)
        return found
    raise (VerificationError if failed else PlanError)(
        f"no verified Packages index of {release.url} names the netboot package for {arch} "
        f"({'; '.join(tried)}): Debian {release.codename} may have no installer for {arch}, or the mirror "
        "is stale or damaged; try another --mirror or --release"
    )


def _find_netboot(path: Path, arch: str, index: str) -> Package | None:
    """Stream the (verified) Packages.xz at `path` to the stanza of debian-installer-<N>-netboot-<arch>.

    Tens of MiB of stanzas, of which one matters (a release has one netboot package per architecture):
    each decompressed block is searched with bytes.find, only that stanza is parsed, and the rest of
    the index is never decompressed.
    """
    import lzma

    # bytes.find is a fast search; a regular expression over every line start would take longer than lzma.
    needle = b"\nPackage: debian-installer-"
    wanted = re.compile(rb"\d+-netboot-" + re.escape(arch.encode()) + rb"\n")
    try:
        with lzma.open(path) as compressed:
            rest = b"\n"
            while True:
                block = compressed.read(PACKAGES_BLOCK)
                text = rest + block
                # Complete stanzas only; the rest waits for the next block (or is all there is, at the end).
                end = text.rfind(b"\n\n") + 1 if block else len(text)
                complete, rest = text[:end], text[end - 1 :] if end else text
                start = complete.find(needle)
                while start >= 0:
                    if wanted.match(complete, start + len(needle)):
                        stop = complete.find(b"\n\n", start + 1)
                        return _package(complete[start + 1 : stop if stop >= 0 else None].decode(), index)
                    start = complete.find(needle, start + 1)
                if not block:
                    return None
    except (lzma.LZMAError, EOFError, UnicodeDecodeError) as error:
        raise VerificationError(f"{index} cannot be read ({error}), though its sha256 matched") from None


def _package(text: str, index: str) -> Package:
    """The netboot package's stanza `text`, checked: a pool path, a sha256 and a size within bounds."""
    stanza = next(stanzas(text.splitlines()), {})
    name = stanza.get("Package", "")
    filename, sha256, size = stanza.get("Filename", ""), stanza.get("SHA256", ""), stanza.get("Size", "")
    if not (
        re.fullmatch(r"pool/[\w.+~/-]+\.deb", filename)
        and ".." not in filename
        and re.fullmatch(r"[0-9a-f]{64}", sha256)
        and size.isdigit()
        and 0 < int(size) <= MAX_DEB
    ):
        raise VerificationError(
            f"{index}: the stanza of {name} is malformed (Filename {filename!r}, Size {size!r}): "
            "the index is not Debian's"
        )
    number = re.sub(r"\D", "", name.split("-netboot-")[0])
    return Package(name, stanza.get("Version", "?"), filename, int(size), sha256, number, index)


def extract(deb: Path, deb_sha256: str, members: set[str], cache: Path, label: str) -> dict[str, Path]:
    """`members` of the verified .deb's data.tar.*, each into the content-addressed cache: member → path.

    Streamed (an ar reader, then tarfile over the compressed stream): memory stays flat whatever
    the package's size. What was taken out of a .deb is noted by its sha256, so it is done once.
    `label` names the package in messages (the cached file is named by its hash).
    """
    import lzma
    import tarfile

    note, folder = cache / "extracted" / f"{deb_sha256}.json", cache / "sha256"
    with open(deb, "rb") as file:
        name, size = _data_member(file, label)
        mode = TAR_MODES.get(name)
        if mode is None:
            raise VerificationError(
                f"{label}: its files are in {name}, a compression this Python cannot read "
                "(it reads xz, gzip, bzip2 and plain tar); take the images path with another --mirror"
            )
        # A data.tar.xz of several blocks (xz compressing with threads) is decoded on two cores.
        start = file.tell()
        found = xz.blocks(file, start, size) if name == "data.tar.xz" else None
        file.seek(start)
        reader = (
            xz.ParallelReader(str(deb), start, found, str(deb.parent))
            if found and _room_for(found, deb.parent)
            else None
        )
        total = sum(block.uncompressed for block in found) if reader and found else size
        progress = Progress(f"extracting {label}", total) if _terminal() else None
        stream = _Bounded(reader.read if reader else file.read, total, progress)
        mode = "r|" if reader else mode
        digests: dict[str, str] = {}
        try:
            with tarfile.open(fileobj=stream, mode=mode, bufsize=TAR_BUFFER) as archive:  # type: ignore[call-overload]
                for member in archive:
                    if member.name not in members:
                        continue
                    if member.isfile() and member.size > MAX_IMAGE:
                        raise VerificationError(
                            f"{label}: {member.name} is {member.size} bytes, more than an installer image can be"
                        )
                    if not member.isfile():
                        raise VerificationError(
                            f"{label}: {member.name} is not a regular file in the package; the layout changed"
                        )
                    source = archive.extractfile(member)
                    digests[member.name] = _store(source.read, folder) if source else ""
                    if len(digests) == len(members):
                        break
        except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as error:
            if isinstance(error, OSError) and error.errno is not None:
                raise cache_error(folder, error) from None
            raise VerificationError(f"{label}: its data archive cannot be read ({error})") from None
        finally:
            if reader:
                reader.close()
        if progress:
            progress.done(stream.done)
    absent = sorted(members - digests.keys())
    if absent:
        raise VerificationError(
            f"{label} holds no {', '.join(absent)}: the package changed its layout; "
            "use a --mirror that has the installer images"
        )
    _write_json(note, digests)
    return {member: folder / digest for member, digest in digests.items()}


def _room_for(found: list[xz.Block], folder: Path) -> bool:
    """Whether `found` blocks (two and more) may be decoded side by side in `folder`: its free space
    holds the three largest decoded blocks beside the files taken out (else one core decodes in order)."""
    if len(found) < 2:
        return False
    largest = sorted(block.uncompressed for block in found)[-3:]
    try:
        status = os.statvfs(folder)
    except OSError:
        return False
    return status.f_bavail * status.f_frsize > sum(largest) + MAX_IMAGE // 4


def _extracted_before(deb_sha256: str, members: set[str], cache: Path) -> dict[str, Path] | None:
    """`members` as an earlier `extract` of the .deb with this sha256 left them in the cache, or None.

    Each is hashed again, as a cached download is: a torn or changed file is taken out anew. The
    .deb itself is not needed then (nor hashed: 150 MiB of it would be most of a warm plan's time).
    """
    note = cache / "extracted" / f"{deb_sha256}.json"
    try:
        known = json.loads(note.read_text()) if note.is_file() else {}
        paths = {member: cache / "sha256" / known[member] for member in members}
    except (ValueError, KeyError, TypeError, OSError):
        return None
    if all(path.is_file() and sha256_of(str(path)) == path.name for path in paths.values()):
        return paths
    return None


def _data_member(file: BinaryIO, label: str) -> tuple[str, int]:
    """Position `file` (a .deb: an ar archive) at its data.tar.* member; return the member's name and size."""
    if file.read(8) != b"!<arch>\n":
        raise VerificationError(f"{label} is not a Debian package (no ar archive header)")
    while True:
        header = file.read(60)
        if len(header) < 60 or header[58:60] != b"`\n":
            raise VerificationError(f"{label} holds no data.tar member (or its ar archive is damaged)")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size_field = header[48:58].strip()
        if not size_field.isdigit():
            raise VerificationError(f"{label}: its ar archive is damaged (member size {size_field!r})")
        size = int(size_field)
        if name.startswith("data.tar"):
            return name, size
        file.seek(size + size % 2, os.SEEK_CUR)


class _Bounded:
    """The next `size` bytes `read` gives, as tarfile's stream reader wants them (read only)."""

    def __init__(self, read: Callable[[int], bytes], size: int, progress: Progress | None) -> None:
        self.file_read, self.left, self.progress, self.done = read, size, progress, 0

    def read(self, count: int = -1) -> bytes:
        count = self.left if count < 0 else min(count, self.left)
        data = self.file_read(count)
        self.left -= len(data)
        self.done += len(data)
        if self.progress:
            self.progress.show(self.done)
        return data


def _store(read: Callable[[int], bytes], folder: Path) -> str:
    """Copy a stream into `folder`, named by its sha256 once complete; return the sha256."""
    import hashlib

    digest = hashlib.sha256()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".partial-", delete=False) as partial:
        try:
            for chunk in iter(lambda: read(1 << 20), b""):
                digest.update(chunk)
                partial.write(chunk)
            partial.flush()
            os.replace(partial.name, folder / digest.hexdigest())
        finally:
            if os.path.exists(partial.name):
                os.unlink(partial.name)
    return digest.hexdigest()


def _write_json(path: Path, value: object) -> None:
    """Write a small note atomically (a cut-off write leaves no half note)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".partial-", delete=False) as partial:
            json.dump(value, partial)
        os.replace(partial.name, path)
    except OSError as error:
        raise cache_error(path.parent, error) from None


def _terminal() -> bool:
    import sys

    return sys.stderr.isatty()


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO
