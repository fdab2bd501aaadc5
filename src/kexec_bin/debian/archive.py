"""Debian's archive protocol, read once for the runtime and the toolkit alike.

    dists/<suite>/InRelease    signed: gpgv against Debian's archive keyring; its Date and Valid-Until hold
      └─ its SHA256 index      path under dists/<suite>/ → (sha256, size) of every index file
           └─ Packages.xz      stanzas: a package's Filename, Size and SHA256 in the pool

Only what gpgv vouches for (its --output, read through --status-fd in the C locale) is ever parsed:
anything a mirror adds around a signature is dropped. apt sources are read here too (deb822 and
one-line formats), so "which mirror" has one answer for every caller.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..errors import DownloadError, UsageError, VerificationError
from ..read import Tree

HOST_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# The wheel carries Debian's keyring (recipes/bundled.toml: the debian-archive-keyring package).
BUNDLED_KEYRING = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keyrings", "debian-archive-keyring.gpg"
)
# A suite's Release file is re-signed at each point release (every two to four months) and more
# often while it is stable; older than this, the mirror has likely stopped following the archive.
STALE_DAYS = 183
# apt refuses a Release file dated in the future (Acquire::Check-Date); a little slack covers clock skew.
FUTURE_SLACK_DAYS = 1
MAX_INRELEASE = 4 << 20
APT_SOURCES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d")
MAX_SOURCES_FILE = 1 << 20
# Archives the installer is not booted from: they carry updates of a release, not the release.
UPDATE_SUITES = re.compile(r"-(security|updates|backports|proposed-updates|backports-sloppy)$")
# A suite or codename as the archive names its folders under dists/ (stable, trixie, bookworm-updates).
SUITE_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")


@dataclass(frozen=True)
class Signed:
    """What gpgv vouched for: the signed text, the keys of its good signatures, and the keys it lacked."""

    text: str
    signers: tuple[str, ...]
    """Each good signature's key: "user id [primary key fingerprint]"."""
    missing: tuple[str, ...] = ()
    """Key ids of signatures no given keyring holds the key for (gpgv's NO_PUBKEY)."""


@dataclass(frozen=True)
class Release:
    """A verified InRelease: what it says about itself, who signed it, and its SHA256 index."""

    suite: str
    codename: str
    version: str
    date: str
    age_days: float
    signers: tuple[str, ...]
    keyring: str
    url: str
    sha256: dict[str, tuple[str, int]]
    """Path under dists/<suite>/ → (sha256, size), from the signed text only."""
    missing: tuple[str, ...] = ()

    def staleness(self) -> str | None:
        """A warning when this Release is older than Debian lets a suite's Release get: a frozen mirror."""
        if self.age_days <= STALE_DAYS:
            return None
        return (
            f"{self.url} was signed {self.age_days:.0f} days ago; Debian re-signs a release at each point "
            "release, so this mirror may have stopped following the archive: try another --mirror"
        )

    def signature_text(self) -> str:
        """The plan's words for the signature: who signed, with which keyring, and any key it lacked."""
        text = f"good signature by {', '.join(self.signers)} (keyring {self.keyring})"
        if self.missing:
            text += (
                f"; also signed by key {', '.join(self.missing)}, which this keyring lacks "
                "(accepted as apt does: a trusted signer's signature is good)"
            )
        return text


def keyrings(given: str | None) -> list[str]:
    """--keyring alone, else the host's Debian archive keyring and the wheel's (newer keys in either count)."""
    if given:
        if not os.path.isfile(given):
            raise VerificationError(f"--keyring {given}: no such file; give a Debian archive keyring (.gpg)")
        return [given]
    found = [keyring for keyring in (HOST_KEYRING, BUNDLED_KEYRING) if os.path.isfile(keyring)]
    if not found:
        raise VerificationError(
            f"no Debian archive keyring: neither {HOST_KEYRING} nor the wheel's copy exists; "
            "install debian-archive-keyring or pass --keyring FILE"
        )
    return found


def gpgv(data: bytes, keyrings: Sequence[str], what: str) -> Signed:
    """The text `data` signs, if a key in `keyrings` made a good signature of it; else VerificationError.

    As apt does, a signature whose key no keyring holds does not spoil the file when another signature
    is good (Debian signs with two or three keys, and an older keyring may lack the newest); a bad
    signature does, as it means the text was changed.
    """
    program = shutil.which("gpgv")
    if not program:
        raise VerificationError(
            f"gpgv is not installed, so the signature of {what} cannot be checked: "
            "install the gpgv package (apt-get install gpgv)"
        )
    with tempfile.TemporaryDirectory(prefix="kexec-bin-gpgv-") as scratch:
        source, output = Path(scratch, "signed"), Path(scratch, "text")
        source.write_bytes(data)
        command = [program, "--status-fd", "1", *[f"--keyring={os.path.abspath(k)}" for k in keyrings]]
        # --output keeps only the signed text: anything a mirror adds around the signature is dropped.
        result = subprocess.run(
            [*command, "--output", str(output), str(source)],
            capture_output=True,
            text=True,
            errors="replace",
            env={**os.environ, "LC_ALL": "C", "LANGUAGE": "C", "GNUPGHOME": scratch},
        )
        status = [line.split()[1:] for line in result.stdout.splitlines() if line.startswith("[GNUPG:] ")]
        # Per signature, GOODSIG names the key's user, then VALIDSIG gives its primary key's fingerprint.
        users = [" ".join(words[2:]) for words in status if words[:1] == ["GOODSIG"]]
        fingerprints = [words[-1] for words in status if words[:1] == ["VALIDSIG"]]
        signers = tuple(f"{user} [{fingerprint}]" for user, fingerprint in zip(users, fingerprints))
        missing = tuple(dict.fromkeys(words[1] for words in status if words[:1] == ["NO_PUBKEY"]))
        bad = [" ".join(words) for words in status if words[:1] in (["BADSIG"], ["EXPKEYSIG"], ["REVKEYSIG"])]
        if bad or not signers or not output.is_file():
            if bad:
                why = f"gpgv reports {'; '.join(bad)}: the file was altered after it was signed"
            elif "invalid packet" in result.stderr or "keyblock resource" in result.stderr:
                # Checked before the missing keys: a keyring gpgv cannot read lacks every key, through no tampering.
                why = (
                    "the keyring cannot be read (gpgv: invalid packet or keyblock resource): give a valid .gpg keyring"
                )
            elif missing:
                why = (
                    f"signed only by key {', '.join(missing)}, which the keyring lacks: signed by a key "
                    "Debian does not use, or the keyring is older than the archive's keys"
                )
            else:
                why = "no valid OpenPGP signature in it (is it an InRelease at all?)"
            said = "; ".join(line for line in result.stderr.splitlines() if line.startswith("gpgv:"))
            raise VerificationError(
                f"{what}: signature not valid with keyring {', '.join(keyrings)}: {why}"
                + (f" ({said})" if said else "")
                + "; "
                "use a trustworthy --mirror, or --keyring with Debian's current archive keyring"
            )
        return Signed(output.read_text(encoding="utf-8", errors="replace"), signers, missing)


def stanzas(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """The deb822 stanzas in `lines` (Release, Packages, Sources, .dsc, apt .sources), streamed:
    field → value, a multi-line value joined with newlines; `#` comment lines dropped."""
    fields: dict[str, str] = {}
    name = ""
    for line in lines:
        line = line.rstrip("\r\n")
        if not line.strip():
            if fields:
                yield fields
            fields, name = {}, ""
        elif line.startswith("#"):
            continue
        elif line[0] in " \t":
            if name:
                fields[name] += "\n" + line.strip()
        else:
            name, _, value = line.partition(":")
            name = name.strip()
            fields[name] = value.strip()
    if fields:
        yield fields


def stanzas_of(text: str, package: str) -> Iterator[dict[str, str]]:
    """The stanzas of `package` in an index's `text` (Packages, Sources): a whole index holds tens of
    thousands, so its `Package: <name>` lines are found with str.find and only their stanzas are parsed."""
    text = "\n" + text
    needle = f"\nPackage: {package}\n"
    found = text.find(needle)
    while found >= 0:
        start, stop = text.rfind("\n\n", 0, found + 1), text.find("\n\n", found + 1)
        yield from stanzas(text[start + 1 : stop if stop >= 0 else None].splitlines())
        found = text.find(needle, found + 1)


def checksums(value: str) -> dict[str, tuple[str, int]]:
    """A checksum field (InRelease's SHA256, a .dsc's Checksums-Sha256): name → (digest, size)."""
    index: dict[str, tuple[str, int]] = {}
    for line in value.splitlines():
        words = line.split()
        if len(words) == 3 and words[1].isdigit():
            index[words[2]] = (words[0].lower(), int(words[1]))
    return index


def verify_release(
    signed: bytes, url: str, suite: str, keyrings: Sequence[str], *, now: float, fresh: bool = True
) -> Release:
    """The InRelease `signed` (as served at `url` for `suite`), verified: signature, suite, Date, Valid-Until.

    `fresh=False` skips Valid-Until, for a caller that wants one named file's authenticity, not the
    newest release (the toolkit's `update` pins an upstream version through an expired sid InRelease).
    """
    verified = gpgv(signed, keyrings, url)
    fields = next(stanzas(verified.text.splitlines()), {})
    if suite not in (fields.get("Suite"), fields.get("Codename")):
        raise VerificationError(
            f"{url} is signed for Suite {fields.get('Suite')!r}, Codename {fields.get('Codename')!r}, "
            f"not {suite!r}: the mirror answers with another release; check --mirror and --release"
        )
    date = _date(fields, "Date", url)
    if date is None:
        raise VerificationError(f"{url}: no Date field; the mirror's Release file is damaged")
    if date > now + FUTURE_SLACK_DAYS * 86400:
        raise VerificationError(
            f"{url}: signed on {fields['Date']}, which is in the future: this machine's clock is behind "
            "(fix it, e.g. with NTP), or the mirror replays a file made to look new"
        )
    valid_until = _date(fields, "Valid-Until", url)
    if fresh and valid_until is not None and valid_until < now:
        raise VerificationError(
            f"{url}: expired on {fields['Valid-Until']} (Valid-Until): the mirror is stale, or this "
            "machine's clock is ahead; use an up-to-date --mirror"
        )
    return Release(
        suite=fields.get("Suite", ""),
        codename=fields.get("Codename", ""),
        version=fields.get("Version", ""),
        date=fields["Date"],
        age_days=(now - date) / 86400,
        signers=verified.signers,
        keyring=", ".join(keyrings),
        url=url,
        sha256=checksums(fields.get("SHA256", "")),
        missing=verified.missing,
    )


def _date(fields: dict[str, str], name: str, url: str) -> float | None:
    """The signed date field `name` as a timestamp, None when absent; a present but unreadable one is refused."""
    from email.utils import parsedate_to_datetime

    if name not in fields:
        return None
    try:
        when = parsedate_to_datetime(fields[name])
        if when.tzinfo is None:
            raise ValueError("no time zone")
        return when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        raise VerificationError(
            f"{url}: its signed {name} {fields[name]!r} is not a date (RFC 2822, as Debian writes it); "
            "the Release file is damaged or not Debian's: use another --mirror"
        ) from None


def fetch_release(mirror: str, suite: str, keyrings: Sequence[str], *, now: float | None = None) -> Release:
    """dists/<suite>/InRelease from `mirror`, verified."""
    import time

    from ..download import fetch_bytes

    url = f"{mirror.rstrip('/')}/dists/{suite}/InRelease"
    signed = fetch_bytes(url, max_bytes=MAX_INRELEASE)
    return verify_release(signed, url, suite, keyrings, now=time.time() if now is None else now)


def check_suite(name: str) -> str:
    """`name` if it can be a suite or codename under dists/ (so it is safe in a URL); else UsageError."""
    if not SUITE_NAME.fullmatch(name):
        raise UsageError(
            f"--release {name!r} is not a Debian suite or codename (like trixie, bookworm, stable, testing, sid)"
        )
    return name


@dataclass(frozen=True)
class AptSource:
    """One enabled entry of apt's sources: where, which suites and components, and who signs it."""

    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str
    origin: str
    """The file it was read from, for messages."""
    types: tuple[str, ...] = field(default=("deb",))


def apt_sources(tree: Tree, places: Sequence[str] = APT_SOURCES) -> list[AptSource]:
    """The enabled entries of apt's sources in `places` (files, or folders of *.list and *.sources) of
    the machine `tree` shows, each read capped and FIFO-safe (a file that cannot be used is skipped)."""
    entries: list[AptSource] = []
    for path in _source_files(tree, places):
        data = tree.read_capped(path, MAX_SOURCES_FILE)
        if data is None:
            continue
        text = data.decode("utf-8", errors="replace")
        entries += _deb822(text, path) if path.endswith(".sources") else _one_line(text, path)
    return entries


def _source_files(tree: Tree, places: Sequence[str]) -> list[str]:
    files: list[str] = []
    for place in places:
        full = tree.path(place)
        if not os.path.isdir(full):
            files.append(place)
        elif tree.inside(full):
            files += [f"{place}/{name}" for name in sorted(os.listdir(full)) if name.endswith((".list", ".sources"))]
    return files


def _deb822(text: str, origin: str) -> list[AptSource]:
    entries = []
    for stanza in stanzas(text.splitlines()):
        if stanza.get("Enabled", "yes").strip().lower() in ("no", "false", "0"):
            continue
        entries.append(
            AptSource(
                uris=tuple(stanza.get("URIs", "").split()),
                suites=tuple(stanza.get("Suites", "").split()),
                components=tuple(stanza.get("Components", "").split()),
                signed_by=stanza.get("Signed-By", "").strip(),
                origin=origin,
                types=tuple(stanza.get("Types", "").split()),
            )
        )
    return entries


def _one_line(text: str, origin: str) -> list[AptSource]:
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        options = re.search(r"\[([^\]]*)\]", line)
        words = re.sub(r"\[[^\]]*\]", " ", line).split()
        if len(words) < 3 or words[0] not in ("deb", "deb-src"):
            continue
        settings = dict(word.partition("=")[::2] for word in (options.group(1).split() if options else []))
        entries.append(
            AptSource(
                uris=(words[1],),
                suites=(words[2],),
                components=tuple(words[3:]),
                signed_by=settings.get("signed-by", ""),
                origin=origin,
                types=(words[0],),
            )
        )
    return entries


def debian_archives(sources: Sequence[AptSource]) -> list[tuple[str, tuple[str, ...]]]:
    """(URI, suites) of each Debian release archive in `sources`, in their order: binary entries whose
    keyring (if named) is Debian's archive keyring, without -security, -updates and backports suites,
    and only http(s) or file URIs."""
    found: dict[str, tuple[str, ...]] = {}
    for source in sources:
        keyring = os.path.basename(source.signed_by) if "\n" not in source.signed_by else "inline key"
        if "deb" not in source.types or (keyring and not keyring.startswith("debian-archive-keyring")):
            continue
        suites = tuple(suite for suite in source.suites if not UPDATE_SUITES.search(suite))
        if not suites:
            continue
        for uri in source.uris:
            if re.match(r"(https?|file)://", uri):
                found[uri] = tuple(dict.fromkeys(found.get(uri, ()) + suites))
    return list(found.items())


def choose_mirror(given: str | None, release: str, tree: Tree) -> tuple[str, str]:
    """The mirror to use and why: `given` (--mirror), else the Debian archive in apt's sources whose
    Suites include `release`, else the first Debian archive there (one mirror serves every release)."""
    if given:
        return given, f"mirror: {given} (--mirror)"
    archives = debian_archives(apt_sources(tree))
    if not archives:
        raise UsageError(
            "no --mirror given and no Debian archive in this host's apt sources (enabled entries signed by "
            "Debian's archive keyring, other than -security, -updates and backports): pass --mirror URL "
            "(a Debian mirror, the folder that holds dists/)"
        )
    for uri, suites in archives:
        if release in suites:
            return uri.rstrip("/"), f"mirror: {uri}, the host's apt source for {release}"
    uri, suites = archives[0]
    return uri.rstrip("/"), (
        f"mirror: {uri}, the host's Debian archive (its apt sources list {', '.join(suites)}, not {release}; "
        "a Debian mirror carries every current release): --mirror chooses another"
    )


# Where a release number is looked for: the aliases the archive keeps for the releases it still serves.
NUMBERED_ALIASES = ("stable", "oldstable", "testing", "oldoldstable")


def resolve_release(mirror: str, name: str, keyrings: Sequence[str], *, now: float | None = None) -> Release:
    """The verified InRelease of `name`: a suite or codename as the archive names it, or a release
    number, found in the Version field of the signed Release files of the archive's aliases."""
    if not name.isdigit():
        return fetch_release(mirror, name, keyrings, now=now)
    seen = []
    for alias in NUMBERED_ALIASES:
        try:
            found = fetch_release(mirror, alias, keyrings, now=now)
        except DownloadError:
            continue
        if found.version.split(".")[0] == name:
            return found
        seen.append(f"{alias} is {found.version or found.codename}")
    raise UsageError(
        f"--release {name}: no release of that number among the archive's current ones "
        f"({'; '.join(seen) or 'none answered'}); give its codename (like bookworm)"
    )
