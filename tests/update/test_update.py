"""`inv update`: a new upstream release adopted through Debian's signed chain, and every refusal.

The chain is the real one, from the host's own apt archive (InRelease, Sources.xz, the .dsc and
the orig tarball); the refusals serve those very files, one of them tampered with, from a real
HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import lzma
import re
import shutil
from pathlib import Path

import pytest

from kexec_build import atomic, fetch, update
from kexec_build.apt import host_archives
from kexec_build.errors import UpdateError
from kexec_build.paths import PROJECT_ROOT
from kexec_build.recipes import load
from tests.conftest import USER_CACHE
from tests.inv import inv

pytestmark = [
    pytest.mark.skipif(
        not all(path.exists() for path in update.UPLOADER_KEYRINGS),
        reason="debian-keyring is not installed (scripts/setup --test installs it)",
    ),
    pytest.mark.network,  # the signed chain comes from the real archive (kept in the cache once fetched)
]
SUITE = "sid"  # the suite that packages kexec-tools 2.0.32
DSC = "kexec-tools_2.0.32-3.dsc"
ORIG = "kexec-tools_2.0.32.orig.tar.xz"
POOL = "pool/main/k/kexec-tools"


def project_with_2_0_25_as_newest(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of recipes/ as it was before 2.0.32 (2.0.25 the default and newest), and an empty licenses/."""
    recipes_dir = tmp_path / "recipes"
    shutil.copytree(PROJECT_ROOT / "recipes", recipes_dir)
    releases = recipes_dir / "kexec-tools.toml"
    text = re.sub(r'\[release\."2\.0\.32"\].*?(?=\[release\.)', "", releases.read_text(), flags=re.S)
    releases.write_text(text.replace('default = "2.0.32"', 'default = "2.0.25"'))
    assert "2.0.32" not in load(recipes_dir).releases
    return recipes_dir, tmp_path / "licenses"


def test_the_real_step_from_2_0_25_to_2_0_32(tmp_path):
    recipes_dir, licenses_dir = project_with_2_0_25_as_newest(tmp_path)
    lines: list[str] = []
    release = update.adopt("2.0.32", recipes_dir=recipes_dir, licenses_dir=licenses_dir, log=lines.append)
    # The project pinned 2.0.32 before this command existed; the chain arrives at the same hash.
    assert (release.sha256, release.size) == (load().release("2.0.32").sha256, load().release("2.0.32").size)
    recorded = load(recipes_dir)
    assert recorded.default_version == "2.0.32"
    assert set(recorded.release("2.0.32").targets) == set(recorded.targets)
    assert recorded.release("2.0.25").sha256 == load().release("2.0.25").sha256
    text = (recipes_dir / "kexec-tools.toml").read_text()
    comment = text[text.index('[release."2.0.32"]') : text.index('sha256 = "8f81')]
    for link in (f"Debian {SUITE}'s InRelease", "main/source/Sources.xz", DSC, ORIG, "gpgv"):
        assert link in " ".join(comment.replace("#", " ").split()), comment
    copying = licenses_dir / "kexec-tools-2.0.32" / "COPYING"
    assert copying.read_bytes() == (PROJECT_ROOT / "licenses/kexec-tools-2.0.32/COPYING").read_bytes()
    assert fetch.cached_path(release).exists()
    assert any("is signed by" in line and DSC in line for line in lines)


def test_an_unknown_version_is_refused_naming_the_suites_tried(tmp_path):
    recipes_dir, licenses_dir = project_with_2_0_25_as_newest(tmp_path)
    before = (recipes_dir / "kexec-tools.toml").read_text()
    with pytest.raises(UpdateError, match=re.escape("no suite of bookworm, trixie, sid has kexec-tools 2.0.99")):
        update.adopt("2.0.99", recipes_dir=recipes_dir, licenses_dir=licenses_dir, log=lambda line: None)
    assert (recipes_dir / "kexec-tools.toml").read_text() == before


CHAIN_PATHS = (f"dists/{SUITE}/InRelease", f"dists/{SUITE}/{update.SOURCES_INDEX}", f"{POOL}/{DSC}", f"{POOL}/{ORIG}")


@pytest.fixture(scope="module")
def real_chain() -> dict[str, bytes]:
    """The real files of sid's chain for kexec-tools 2.0.32, by their archive path: downloaded from the host's
    archive once into the user's cache, and checked on every use (`authentic_chain`); a cached chain that fails
    the check is downloaded again."""
    folder = USER_CACHE / "test-debian-chain"
    if all((folder / path).exists() for path in CHAIN_PATHS):
        cached = {path: (folder / path).read_bytes() for path in CHAIN_PATHS}
        try:
            return authentic_chain(cached)
        except UpdateError:
            pass  # stale or damaged: fetch it again
    archive = host_archives()[0].uri.rstrip("/")
    files = authentic_chain({path: update._get(f"{archive}/{path}") for path in CHAIN_PATHS})
    for path, data in files.items():
        atomic.write_bytes(folder / path, data)
    return files


def authentic_chain(files: dict[str, bytes]) -> dict[str, bytes]:
    """`files` if every byte is vouched for: InRelease by the archive key, Sources.xz by its
    sha256 in InRelease, the .dsc by its uploader's signature, the orig tarball by its sha256 in the .dsc.
    Else `UpdateError`. (The test under `verify` checks the .dsc's hash in Sources too; here that would cost
    decompressing all of sid's Sources on every run for no more certainty.)"""
    inrelease_path, sources_path, dsc_path, orig_path = CHAIN_PATHS
    inrelease = update.gpgv(files[inrelease_path], [update.ARCHIVE_KEYRING], inrelease_path).text
    sources_sha256 = update.sha256_field(inrelease, "SHA256").get(update.SOURCES_INDEX, "")
    update.check_sha256(files[sources_path], sources_sha256, sources_path, inrelease_path)
    dsc = update.gpgv(files[dsc_path], update.UPLOADER_KEYRINGS, dsc_path).text
    update.check_sha256(
        files[orig_path], update.sha256_field(dsc, "Checksums-Sha256").get(ORIG, ""), orig_path, dsc_path
    )
    return files


@pytest.mark.parametrize("path", CHAIN_PATHS)
def test_a_cached_chain_with_one_byte_changed_is_not_used(real_chain, path):
    data = real_chain[path]
    middle = len(data) // 2
    damaged = {**real_chain, path: data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]}
    with pytest.raises(UpdateError, match=re.escape(path)):
        authentic_chain(damaged)


def serve(httpserver, files: dict[str, bytes]) -> str:
    for path, data in files.items():
        httpserver.expect_request(f"/debian/{path}").respond_with_data(data)
    return httpserver.url_for("/debian")


def verify_from(archive: str) -> update.Verified:
    return update.verify(
        "2.0.32", package="kexec-tools", suites=[SUITE], orig=ORIG, archive=archive, log=lambda line: None
    )


def test_the_untampered_chain_from_a_loopback_copy_verifies(httpserver, real_chain, isolated):
    assert verify_from(serve(httpserver, real_chain)).sha256 == load().release("2.0.32").sha256


def test_a_tampered_sources_entry_is_refused(httpserver, real_chain, isolated):
    sources_path = f"dists/{SUITE}/{update.SOURCES_INDEX}"
    sources = lzma.decompress(real_chain[sources_path]).decode()
    stanza = next(block for block in sources.split("\n\n") if block.startswith("Package: kexec-tools\n"))
    dsc_sha256 = update.sha256_field(stanza, "Checksums-Sha256")[DSC]
    # An attacker's Sources: kexec-tools' .dsc replaced by one of their own (here: any other hash). The
    # forged index holds that stanza alone: compressing all of sid's would take seconds and prove no more.
    forged = stanza.replace(dsc_sha256, "0" * 64)
    assert forged != stanza
    tampered = {**real_chain, sources_path: lzma.compress(forged.encode(), preset=0)}
    with pytest.raises(
        UpdateError, match=rf"{SUITE}'s {re.escape(update.SOURCES_INDEX)}: sha256 .* that InRelease names"
    ):
        verify_from(serve(httpserver, tampered))


def test_a_tampered_inrelease_is_refused(httpserver, real_chain, isolated):
    path = f"dists/{SUITE}/InRelease"
    tampered = {**real_chain, path: real_chain[path].replace(b"Suite: unstable", b"Suite: unstablE", 1)}
    with pytest.raises(UpdateError, match="InRelease: signature not valid with keyring"):
        verify_from(serve(httpserver, tampered))


def test_a_dsc_whose_signature_does_not_verify_is_refused(real_chain):
    dsc = real_chain[f"{POOL}/{DSC}"]
    assert "Khalid Aziz" in update.gpgv(dsc, update.UPLOADER_KEYRINGS, DSC).signer
    # One byte of the signed text changed: the uploader's signature no longer covers it.
    forged = dsc.replace(b"Maintainer:", b"Maintainer: ", 1)
    with pytest.raises(UpdateError, match=f"{DSC}: signature not valid with keyring .*BADSIG"):
        update.gpgv(forged, update.UPLOADER_KEYRINGS, DSC)
    # And a true signature by a key outside the uploaders' keyrings is refused too.
    with pytest.raises(UpdateError, match=r"signed only by key .*, which the keyring lacks"):
        update.gpgv(dsc, [update.ARCHIVE_KEYRING], DSC)


def test_a_tarball_that_does_not_match_is_refused(httpserver, real_chain, isolated):
    path = f"{POOL}/{ORIG}"
    tampered = {**real_chain, path: real_chain[path][:-1] + bytes([real_chain[path][-1] ^ 1])}
    with pytest.raises(UpdateError, match=f"{ORIG}: sha256 .* that {re.escape(DSC)} names"):
        verify_from(serve(httpserver, tampered))


@pytest.mark.build  # inv update builds and boots every target
@pytest.mark.vm
@pytest.mark.cross
@pytest.mark.timeout(3600)
def test_inv_update_of_the_pinned_release_verifies_it_makes_every_wheel_and_proves_x86_64():
    # On the project itself: 2.0.32 is pinned already, so the recipe and licenses/ stay as they are
    # (a different verified hash would be refused); then every wheel is made and x86_64's proven.
    releases = PROJECT_ROOT / "recipes" / "kexec-tools.toml"
    before = releases.read_text()
    result = inv("update", "--version", "2.0.32", timeout=3600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert releases.read_text() == before
    assert "already pins kexec-tools 2.0.32 with this sha256" in result.stdout
    assert re.search(r"^mips64el .* yes \(qemu-mips64el-static\)$", result.stdout, re.M)
    assert re.search(r"^wheel: x86_64: .*\.whl", result.stdout, re.M)  # made now, not an older one from dist/
    assert re.search(r"^x86_64 +default +[0-9.]+ +ok$", result.stdout, re.M)
