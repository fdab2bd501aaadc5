"""`inv update --version V`: adopt a new upstream kexec-tools release, verified by a signature chain.

kernel.org is not reachable from every build machine, so the chain here is Debian's, from the
archive the host's apt already uses: the suite's InRelease (gpgv against the Debian archive
keyring) names the sha256 of main/source/Sources.xz; Sources names the sha256 of the source
package's .dsc; the .dsc is signed by its uploader (gpgv against the Debian developers' and
maintainers' keyrings) and names the sha256 of the orig tarball, which is upstream's tarball
byte for byte. Only the gpgv output (the signed text) is read, never the bytes around it. The
release is then written into recipes/kexec-tools.toml with its sha256 and how it was verified
(as Buildroot's .hash files do), and its COPYING is copied into licenses/ for review.
"""

from __future__ import annotations

import hashlib
import lzma
import re
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import requests

from kexec_bin.debian import archive as debian_archive
from kexec_bin.errors import VerificationError

from . import atomic, fetch, recipes
from .apt import host_archives
from .commands import Log
from .errors import UpdateError
from .paths import PROJECT_ROOT, cache_dir
from .recipes import Recipes, Release

ARCHIVE_KEYRING = Path(debian_archive.HOST_KEYRING)
# The Debian developers' and maintainers' keys (the debian-keyring package): who may upload a .dsc.
UPLOADER_KEYRINGS = tuple(
    Path("/usr/share/keyrings") / name
    for name in ("debian-keyring.gpg", "debian-maintainers.gpg", "debian-nonupload.gpg")
)
SOURCES_INDEX = "main/source/Sources.xz"
TIMEOUT = (10, 120)


@dataclass(frozen=True)
class Signed:
    """What gpgv vouched for: the signed text, and who signed it and when (gpgv's own words)."""

    text: str
    signer: str


@dataclass(frozen=True)
class SourceEntry:
    """A source package's stanza in a verified Sources index."""

    version: str
    directory: str
    files: dict[str, str]
    """File name → sha256 (Checksums-Sha256)."""


@dataclass(frozen=True)
class Verified:
    """An upstream tarball that came through the whole chain, and the chain's words for the recipe."""

    tarball: Path
    sha256: str
    how: str


def gpgv(data: bytes, keyrings: Sequence[Path], what: str) -> Signed:
    """The text `data` signs, if a key in `keyrings` made its signature; else `UpdateError`.

    Read through the runtime's own gpgv reader (status lines in the C locale): the signer is named
    whatever the host's language."""
    _require(keyrings, what)
    try:
        verified = debian_archive.gpgv(data, [str(keyring) for keyring in keyrings], what)
    except VerificationError as error:
        raise UpdateError(str(error)) from None
    return Signed(verified.text, ", ".join(verified.signers))


def _require(keyrings: Sequence[Path], what: str) -> None:
    """Refuse to check `what` without its keyrings, naming the packages that hold them."""
    missing = [str(keyring) for keyring in keyrings if not keyring.exists()]
    if missing:
        raise UpdateError(
            f"cannot check {what}: {', '.join(missing)} missing; install debian-archive-keyring and "
            "debian-keyring (apt-get install debian-archive-keyring debian-keyring gpgv)"
        )


def signed_release(mirror: str, suite: str) -> debian_archive.Release:
    """`suite`'s InRelease from `mirror`, verified as netboot verifies it, though it may have expired:
    its signature still vouches for the files it names, and `update` asks for one version, not the newest."""
    import time

    url = f"{mirror}/dists/{suite}/InRelease"
    _require([ARCHIVE_KEYRING], f"{suite}'s InRelease")
    try:
        return debian_archive.verify_release(
            _get(url), url, suite, [str(ARCHIVE_KEYRING)], now=time.time(), fresh=False
        )
    except VerificationError as error:
        raise UpdateError(str(error)) from None


def check_sha256(data: bytes, expected: str, what: str, source: str) -> None:
    """Refuse `data` unless its sha256 is the one `source` names."""
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise UpdateError(
            f"{what}: sha256 {got} is not the {expected} that {source} names: "
            "a tampered or corrupt download (or a mirror caught mid-sync); nothing was written"
        )


def sha256_field(text: str, field: str) -> dict[str, str]:
    """A checksum field of the first stanza of `text` (InRelease's SHA256, Checksums-Sha256) as name → sha256."""
    stanza = next(debian_archive.stanzas(text.splitlines()), {})
    return {name: digest for name, (digest, _) in debian_archive.checksums(stanza.get(field, "")).items()}


def upstream_version(debian_version: str) -> str:
    """kexec-tools' own version in a Debian one: no epoch, no Debian revision ('1:2.0.32-3' → '2.0.32')."""
    return re.sub(r"^\d+:", "", debian_version).rsplit("-", 1)[0]


def find_source(sources: str, package: str, version: str) -> SourceEntry | None:
    """The stanza of `package` whose upstream version is `version`, in the (verified) Sources text."""
    for fields in debian_archive.stanzas_of(sources, package):
        if upstream_version(fields.get("Version", "")) != version:
            continue
        digests = debian_archive.checksums(fields.get("Checksums-Sha256", ""))
        return SourceEntry(fields["Version"], fields["Directory"], {name: d for name, (d, _) in digests.items()})
    return None


def verify(
    release_version: str,
    *,
    package: str,
    suites: Sequence[str],
    orig: str,
    archive: str | None = None,
    log: Log = print,
) -> Verified:
    """Download and verify `orig` of `package` at upstream `release_version` through Debian's chain, from
    `archive` (default: the host's own apt archive)."""
    archive = (archive or host_archives()[0].uri).rstrip("/")
    tried = []
    for suite in suites:
        inrelease = signed_release(archive, suite)
        log(f"update: {suite}'s InRelease is signed by {', '.join(inrelease.signers)}")
        if SOURCES_INDEX not in inrelease.sha256:
            raise UpdateError(f"{suite}'s signed InRelease lists no {SOURCES_INDEX}")
        digest = inrelease.sha256[SOURCES_INDEX][0]
        sources = _cached(f"{archive}/dists/{suite}/{SOURCES_INDEX}", digest, f"{suite}'s {SOURCES_INDEX}", "InRelease")
        entry = find_source(lzma.decompress(sources).decode(errors="replace"), package, release_version)
        if entry is None:
            tried.append(suite)
            continue
        dsc_name = f"{package}_{re.sub(r'^[0-9]+:', '', entry.version)}.dsc"
        for name in (dsc_name, orig):
            if name not in entry.files:
                raise UpdateError(f"{suite}'s Sources lists no {name} for {package} {entry.version}")
        dsc_bytes = _get(f"{archive}/{entry.directory}/{dsc_name}")
        check_sha256(dsc_bytes, entry.files[dsc_name], dsc_name, f"{suite}'s signed Sources")
        dsc = gpgv(dsc_bytes, UPLOADER_KEYRINGS, dsc_name)
        log(f"update: {dsc_name} is signed by {dsc.signer}")
        expected = sha256_field(dsc.text, "Checksums-Sha256").get(orig)
        if expected is None or expected != entry.files[orig]:
            raise UpdateError(
                f"{dsc_name} and {suite}'s Sources disagree on {orig}'s sha256 ({expected} vs {entry.files[orig]})"
            )
        _cached(f"{archive}/{entry.directory}/{orig}", expected, orig, dsc_name)
        how = (
            f"Debian {suite}'s InRelease (gpgv, debian-archive-keyring: {', '.join(inrelease.signers)}) → "
            f"{SOURCES_INDEX} → "
            f"{dsc_name} (gpgv, debian-keyring: {dsc.signer}) → {orig}, byte-identical to upstream's tarball"
        )
        return Verified(_cache_path(expected), expected, how)
    raise UpdateError(
        f"no suite of {', '.join(suites)} has {package} {release_version} (their signed Sources list "
        f"other versions); wait for Debian to package it, or name the suite in recipes/kexec-tools.toml "
        f"debian-source.suites"
    )


def _get(url: str) -> bytes:
    try:
        response = requests.get(url, timeout=TIMEOUT)
        response.raise_for_status()
    except requests.RequestException as error:
        raise UpdateError(f"could not download {url}: {error}") from None
    return response.content


def _cache_path(sha256: str) -> Path:
    return cache_dir() / "debian-chain" / sha256


def _cached(url: str, sha256: str, what: str, source: str) -> bytes:
    """The file at `url` whose sha256 `source` names: from the content-addressed cache, else downloaded,
    checked and kept."""
    path = _cache_path(sha256)
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
        return path.read_bytes()
    data = _get(url)
    check_sha256(data, sha256, what, source)
    atomic.write_bytes(path, data)
    return data


def record(recipes_dir: Path, version: str, verified: Verified, recipe_set: Recipes, log: Log = print) -> Release:
    """Write `version` into kexec-tools.toml (as the default, for every target) with its sha256 and how it
    was verified; return the release as the recipe now reads it."""
    path = recipes_dir / recipes.RELEASES_FILE
    text = path.read_text()
    known = recipe_set.releases.get(version)
    if known is not None:
        if known.sha256 != verified.sha256:
            raise UpdateError(
                f"{path} already pins kexec-tools {version} to sha256 {known.sha256}, but the "
                f"verified tarball is {verified.sha256}: find out why before changing it by hand"
            )
        log(f"update: {path.name} already pins kexec-tools {version} with this sha256")
    else:
        today = datetime.now(timezone.utc).date().isoformat()
        targets = ", ".join(f'"{name}"' for name in recipe_set.targets)
        comment = "\n".join(f"# {line}" for line in _wrap(f"Verified {today} by `inv update`: {verified.how}."))
        table = (
            f'[release."{version}"]\n{comment}\nsha256 = "{verified.sha256}"\n'
            f"size = {verified.tarball.stat().st_size}\nbuild = 0\n"
            f"# Every target: `inv update` builds them all; drop any this release cannot build.\n"
            f"targets = [{targets}]\n\n"
        )
        first = re.search(r'^\[release\."', text, re.M)
        text = text[: first.start()] + table + text[first.start() :] if first else text + "\n" + table
    text = re.sub(r'^default = ".*"$', f'default = "{version}"', text, count=1, flags=re.M)
    previous = path.read_text()
    atomic.write_text(path, text)
    try:
        return recipes.load(recipes_dir).release(version)
    except Exception:
        atomic.write_text(path, previous)
        raise


def _wrap(text: str, width: int = 98) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def copy_license(tarball: Path, release: Release, licenses_dir: Path, log: Log = print) -> Path:
    """The release's COPYING, from its verified tarball into licenses/kexec-tools-<version>/ for review."""
    destination = licenses_dir / f"kexec-tools-{release.version}" / "COPYING"
    with tarfile.open(tarball) as archive:
        member = next(
            (m for m in archive if m.isfile() and m.name.split("/")[-1] == "COPYING" and m.name.count("/") == 1), None
        )
        if member is None:
            raise UpdateError(f"{tarball.name} has no top-level COPYING: review its license by hand")
        data = archive.extractfile(member).read()  # type: ignore[union-attr]
    if destination.exists() and destination.read_bytes() == data:
        log(f"update: {destination} is unchanged")
    else:
        atomic.write_bytes(destination, data)
        log(f"update: wrote {destination}: review it (git diff) before releasing")
    return destination


def adopt(
    version: str,
    *,
    recipes_dir: Path = recipes.RECIPES_DIR,
    licenses_dir: Path = PROJECT_ROOT / "licenses",
    log: Log = print,
) -> Release:
    """Verify `version` through Debian's chain, record it in the recipe, copy its COPYING and put the
    tarball in the download cache; return the release."""
    if not re.fullmatch(r"\d+(\.\d+)+", version):
        raise UpdateError(f"--version {version!r} is not a kexec-tools version such as 2.0.32")
    recipe_set = recipes.load(recipes_dir)
    default = recipe_set.release()
    orig = f"{default.debian_package}_{version}.orig.tar.{default.source.rsplit('.tar.', 1)[1]}"
    verified = verify(version, package=default.debian_package, suites=default.debian_suites, orig=orig, log=log)
    release = record(recipes_dir, version, verified, recipe_set, log=log)
    copy_license(verified.tarball, release, licenses_dir, log=log)
    cached = fetch.cached_path(release)
    if not cached.exists():
        atomic.copy_file(verified.tarball, cached)
    log(f"update: kexec-tools {version} is the default release, sha256 {release.sha256}")
    return release
