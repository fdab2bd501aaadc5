"""The Debian installer's netboot files, verified along Debian's own signed chain.

    dists/<suite>/InRelease            signed: checked with gpgv against a Debian archive keyring
      └─ main/installer-<arch>/current/images/SHA256SUMS   its sha256 listed in the verified InRelease
           └─ the netboot kernel and initrd                 their sha256 listed in that SHA256SUMS

No step is skipped: a file is used only once every link above it held.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ._architectures import DEBIAN as MACHINES  # `uname -m` → Debian architecture (recipes/targets.toml)
from .download import fetch_bytes, fetch_file
from .errors import VerificationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

HOST_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# The wheel carries Debian's keyring (from the debian-archive-keyring package, recorded in the SBOM).
BUNDLED_KEYRING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keyrings", "debian-archive-keyring.gpg")

# Where each architecture's netboot kernel and initrd sit under installer-<arch>/current/images/,
# read from the archive's SHA256SUMS files. armel and mips64el ship per-board images only, no generic one.
IMAGES = {
    "amd64": ("netboot/debian-installer/amd64/linux", "netboot/debian-installer/amd64/initrd.gz"),
    "arm64": ("netboot/debian-installer/arm64/linux", "netboot/debian-installer/arm64/initrd.gz"),
    "i386": ("netboot/debian-installer/i386/linux", "netboot/debian-installer/i386/initrd.gz"),
    "riscv64": ("netboot/debian-installer/riscv64/linux", "netboot/debian-installer/riscv64/initrd.gz"),
    "ppc64el": ("netboot/debian-installer/ppc64el/vmlinux", "netboot/debian-installer/ppc64el/initrd.gz"),
    "armhf": ("netboot/vmlinuz", "netboot/initrd.gz"),
    "s390x": ("generic/kernel.debian", "generic/initrd.debian"),
}
# Release numbers → codenames, for --release 12; the archive itself answers for names.
NUMBERS = {"11": "bullseye", "12": "bookworm", "13": "trixie", "14": "forky"}
# A suite's Release file is re-signed at each point release (every two to four months) and more
# often while it is stable; older than this, the mirror has likely stopped following the archive.
STALE_DAYS = 183
MAX_INRELEASE = 4 << 20
MAX_SUMS = 1 << 20
MAX_IMAGE = 512 << 20


@dataclass(frozen=True)
class Release:
    """A verified InRelease: what it says about itself, who signed it, and its SHA256 index."""

    suite: str
    codename: str
    version: str
    date: str
    age_days: float
    signers: tuple[str, ...]
    """Each good signature's key: "user id [primary key fingerprint]"."""
    keyring: str
    url: str
    sha256: dict[str, tuple[str, int]]
    """Path under dists/<suite>/ → (sha256, size), from the signed text only."""

    def staleness(self) -> str | None:
        """A warning when this Release is older than Debian lets a suite's Release get: a frozen mirror."""
        if self.age_days <= STALE_DAYS:
            return None
        return (
            f"{self.url} was signed {self.age_days:.0f} days ago; Debian re-signs a release at each point "
            "release, so this mirror may have stopped following the archive: try another --mirror"
        )


@dataclass(frozen=True)
class VerifiedFile:
    path: Path
    url: str
    sha256: str
    check: str


def machine_arch(machine: str | None = None) -> str:
    """The Debian architecture of this machine (`uname -m`)."""
    machine = machine or os.uname().machine
    try:
        return MACHINES[machine]
    except KeyError:
        raise VerificationError(
            f"this machine is {machine}: Debian ships no netboot installer for it "
            f"(architectures with one: {', '.join(IMAGES)})"
        ) from None


def choose_keyring(given: str | None) -> str:
    """--keyring, else the host's Debian archive keyring, else the one in the wheel."""
    for keyring in [given] if given else [HOST_KEYRING, BUNDLED_KEYRING]:
        if os.path.isfile(keyring):
            return keyring
        if given:
            raise VerificationError(f"--keyring {given}: no such file; give a Debian archive keyring (.gpg)")
    raise VerificationError(
        f"no Debian archive keyring: neither {HOST_KEYRING} nor the wheel's copy exists; "
        "install debian-archive-keyring or pass --keyring FILE"
    )


def release(mirror: str, suite: str, keyring: str, *, now: float | None = None) -> Release:
    """dists/<suite>/InRelease from `mirror`, verified with gpgv against `keyring`."""
    import time
    from email.utils import parsedate_to_datetime

    name = NUMBERS.get(suite, suite)
    url = f"{mirror.rstrip('/')}/dists/{name}/InRelease"
    signed = fetch_bytes(url, max_bytes=MAX_INRELEASE)
    text, signers = _gpgv(signed, keyring, url)
    fields = dict(re.findall(r"^([A-Za-z-]+): *(.*)$", text.split("\n\n", 1)[0], re.M))
    if name not in (fields.get("Suite"), fields.get("Codename")):
        raise VerificationError(
            f"{url} is signed for Suite {fields.get('Suite')!r}, Codename {fields.get('Codename')!r}, "
            f"not {suite!r}: the mirror answers with another release; check --mirror and --release"
        )
    try:
        date = parsedate_to_datetime(fields["Date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        raise VerificationError(f"{url}: no readable Date field; the mirror's Release file is damaged") from None
    now = time.time() if now is None else now
    if "Valid-Until" in fields and parsedate_to_datetime(fields["Valid-Until"]).timestamp() < now:
        raise VerificationError(
            f"{url}: expired on {fields['Valid-Until']} (Valid-Until): the mirror is stale; use an up-to-date --mirror"
        )
    return Release(
        suite=fields.get("Suite", ""),
        codename=fields.get("Codename", ""),
        version=fields.get("Version", ""),
        date=fields["Date"],
        age_days=(now - date) / 86400,
        signers=signers,
        keyring=keyring,
        url=url,
        sha256=_sha256_index(text),
    )


def _gpgv(signed: bytes, keyring: str, url: str) -> tuple[str, tuple[str, ...]]:
    """The text gpgv vouches for, and the keys of its good signatures."""
    gpgv = shutil.which("gpgv")
    if not gpgv:
        raise VerificationError(
            "gpgv is not installed, so the Debian release signature cannot be checked: "
            "install the gpgv package (apt-get install gpgv)"
        )
    with tempfile.TemporaryDirectory(prefix="kexec-bin-gpgv-") as scratch:
        source, output = Path(scratch, "InRelease"), Path(scratch, "Release")
        source.write_bytes(signed)
        # --output keeps only the signed text: anything a mirror adds around the signature is dropped.
        result = subprocess.run(
            [gpgv, "--status-fd", "1", "--keyring", os.path.abspath(keyring), "--output", str(output), str(source)],
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C", "GNUPGHOME": scratch},
        )
        status = result.stdout.splitlines()
        # Per signature, GOODSIG names the key's user, then VALIDSIG gives its primary key's fingerprint.
        users = [line.split(None, 3)[3] for line in status if line.startswith("[GNUPG:] GOODSIG ")]
        fingerprints = [line.split()[-1] for line in status if line.startswith("[GNUPG:] VALIDSIG ")]
        signers = tuple(f"{user} [{fingerprint}]" for user, fingerprint in zip(users, fingerprints))
        bad = [line for line in status if line.split()[1:2] in (["BADSIG"], ["ERRSIG"], ["EXPKEYSIG"], ["REVKEYSIG"])]
        if result.returncode != 0 or not signers or bad:
            why = (
                "; ".join(line for line in result.stderr.splitlines() if line.startswith("gpgv:"))
                or "no valid signature"
            )
            raise VerificationError(
                f"{url}: signature not valid with keyring {keyring}: {why}; "
                "the file was altered or signed by a key Debian does not use: "
                "use a trustworthy --mirror, or --keyring with Debian's current archive keyring"
            )
        return output.read_text(encoding="utf-8", errors="replace"), signers


def _sha256_index(text: str) -> dict[str, tuple[str, int]]:
    index: dict[str, tuple[str, int]] = {}
    block = re.search(r"^SHA256:\n((?:[ \t].*\n?)*)", text, re.M)
    for line in block.group(1).splitlines() if block else []:
        words = line.split()
        if len(words) == 3:
            index[words[2]] = (words[0], int(words[1]))
    return index


def installer_files(
    mirror: str,
    verified: Release,
    arch: str,
    *,
    cache: Path | None = None,
    accept_kernel: Callable[[str], object] | None = None,
) -> tuple[VerifiedFile, VerifiedFile, VerifiedFile]:
    """SHA256SUMS, the kernel and the initrd of the netboot installer for `arch`, each checked
    (and kept in `cache`, default the user's download cache)."""
    if arch not in IMAGES:
        raise VerificationError(
            f"--arch {arch}: Debian ships no generic netboot installer for it; choose one of {', '.join(IMAGES)}"
        )
    images = f"main/installer-{arch}/current/images"
    listed = verified.sha256.get(f"{images}/SHA256SUMS")
    if not listed:
        available = sorted(
            {
                key.split("/")[1][len("installer-") :]
                for key in verified.sha256
                if re.fullmatch(r"main/installer-[\w-]+/current/images/SHA256SUMS", key)
            }
        )
        raise VerificationError(
            f"Debian {verified.codename} ships no installer for {arch} "
            f"(its InRelease lists installers for {', '.join(available) or 'none'}): choose another --release"
        )
    base = f"{mirror.rstrip('/')}/dists/{verified.codename}/{images}"
    sums_sha256, sums_size = listed
    sums_path = fetch_file(
        f"{base}/SHA256SUMS", sha256=sums_sha256, max_bytes=max(sums_size, 1), cache=cache, label=f"{arch} SHA256SUMS"
    )
    sums = VerifiedFile(
        sums_path,
        f"{base}/SHA256SUMS",
        sums_sha256,
        f"sha256 {sums_sha256} listed in {verified.url} (signature verified)",
    )
    table = {}
    for line in sums_path.read_text().splitlines():
        digest, _, name = line.partition(" ")
        name = name.strip().lstrip("*")
        table[name[2:] if name.startswith("./") else name] = digest
    kernel_name, initrd_name = IMAGES[arch]
    kernel = _image(base, kernel_name, table, sums.url, cache)
    if accept_kernel:  # a kernel this host will not load is refused before the initrd is downloaded
        accept_kernel(str(kernel.path))
    return sums, kernel, _image(base, initrd_name, table, sums.url, cache)


def _image(base: str, image: str, table: dict[str, str], sums_url: str, cache: Path | None) -> VerifiedFile:
    digest = table.get(image)
    if not digest:
        raise VerificationError(
            f"{sums_url} does not list {image}: the installer's layout changed or the mirror "
            "is incomplete; check --mirror"
        )
    url = f"{base}/{image}"
    return VerifiedFile(
        fetch_file(url, sha256=digest, max_bytes=MAX_IMAGE, cache=cache, label=image),
        url,
        digest,
        f"sha256 {digest} listed in SHA256SUMS (itself checked against InRelease)",
    )
