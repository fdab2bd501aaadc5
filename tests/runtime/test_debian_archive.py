"""`kexec_bin.debian.archive`: signatures through gpgv's status lines, signed dates, checksum indexes,
stanzas and apt sources, with real gpg keys, Debian's real (expired) InRelease and real files.

The signing keys are throwaway ones made by gpg for each test; the expired InRelease is the archive's
own sid InRelease, signed by Debian, kept in tests/runtime/data.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest

from kexec_bin.debian import archive
from kexec_bin.errors import UsageError, VerificationError
from kexec_bin.read import Tree
from kexec_build.testbed.netboot_mirror import ThrowawayKeys

DATA = Path(__file__).parent / "data"
NOW = time.time()


def release_text(**fields: str) -> bytes:
    """A small Release text as Debian writes it, with `fields` changed (a value of "" drops the field)."""
    values = {
        "Origin": "Debian",
        "Suite": "stable",
        "Codename": "trixie",
        "Version": "13.8",
        "Date": format_datetime(datetime.fromtimestamp(NOW - 86400, timezone.utc), usegmt=True),
        **fields,
    }
    lines = [f"{name}: {value}" for name, value in values.items() if value != ""]
    return ("\n".join(lines) + "\nSHA256:\n " + "ab" * 32 + "  1234 main/binary-amd64/Packages.xz\n").encode()


@pytest.fixture(scope="module")
def keys():
    with ThrowawayKeys() as made:
        made.first = made.make("First Archive Key")  # type: ignore[attr-defined]
        made.second = made.make("Second Archive Key")  # type: ignore[attr-defined]
        yield made


def test_a_good_signature_counts_though_the_keyring_lacks_the_other_signer(keys, tmp_path):
    signed = keys.sign(release_text(), [keys.first, keys.second])
    keyring = keys.keyring([keys.first], tmp_path / "older.gpg")
    release = archive.verify_release(signed, "http://m/dists/trixie/InRelease", "trixie", [str(keyring)], now=NOW)
    assert release.signers == (f"First Archive Key <nobody@example.invalid> [{keys.first}]",)
    assert release.missing == (keys.second[-16:],)
    assert f"also signed by key {keys.second[-16:]}, which this keyring lacks" in release.signature_text()


def test_a_file_signed_only_by_an_unknown_key_is_refused_naming_the_key(keys, tmp_path):
    signed = keys.sign(release_text(), [keys.second])
    keyring = keys.keyring([keys.first], tmp_path / "older.gpg")
    with pytest.raises(VerificationError, match=f"signed only by key {keys.second[-16:]}, which the keyring lacks"):
        archive.verify_release(signed, "http://m/dists/trixie/InRelease", "trixie", [str(keyring)], now=NOW)


def test_a_keyring_gpgv_cannot_read_is_named_as_such_not_as_tampering(tmp_path):
    # Debian's real InRelease against a keyring file that holds no OpenPGP packets at all.
    keyring = tmp_path / "damaged.gpg"
    keyring.write_text("not a keyring\n")
    with pytest.raises(VerificationError) as raised:
        archive.gpgv((DATA / "sid-expired.InRelease").read_bytes(), [str(keyring)], "InRelease")
    assert "the keyring cannot be read (gpgv: invalid packet or keyblock resource)" in str(raised.value)
    assert "which the keyring lacks" not in str(raised.value)


def test_a_changed_text_is_a_bad_signature_even_beside_a_missing_key(keys, tmp_path):
    signed = keys.sign(release_text(), [keys.first, keys.second]).replace(b"Version: 13.8", b"Version: 13.9")
    keyring = keys.keyring([keys.first], tmp_path / "older.gpg")
    with pytest.raises(VerificationError, match=r"BADSIG .*altered after it was signed"):
        archive.verify_release(signed, "http://m/dists/trixie/InRelease", "trixie", [str(keyring)], now=NOW)


def test_the_second_keyring_supplies_a_key_the_first_lacks(keys, tmp_path):
    signed = keys.sign(release_text(), [keys.second])
    first = keys.keyring([keys.first], tmp_path / "host.gpg")
    second = keys.keyring([keys.second], tmp_path / "wheel.gpg")
    release = archive.verify_release(signed, "u", "trixie", [str(first), str(second)], now=NOW)
    assert release.signers == (f"Second Archive Key <nobody@example.invalid> [{keys.second}]",)


def test_the_signer_is_named_in_any_locale(keys, tmp_path, monkeypatch):
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    monkeypatch.setenv("LANGUAGE", "de")
    signed = keys.sign(b"Checksums-Sha256:\n " + b"cd" * 32 + b" 5 a.tar.xz\n", [keys.first])
    verified = archive.gpgv(signed, [str(keys.keyring([keys.first], tmp_path / "k.gpg"))], "a.dsc")
    assert verified.signers == (f"First Archive Key <nobody@example.invalid> [{keys.first}]",)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"Valid-Until": " "}, "its signed Valid-Until '' is not a date"),
        (
            {"Valid-Until": "Fri, 99 Foo 2026 08:08:01 UTC"},
            "its signed Valid-Until 'Fri, 99 Foo 2026 08:08:01 UTC' is not",
        ),
        ({"Valid-Until": "tomorrow"}, "its signed Valid-Until 'tomorrow' is not a date"),
        ({"Date": "Sat, 21 Nov 2026 09:15:44"}, "its signed Date 'Sat, 21 Nov 2026 09:15:44' is not a date"),
        ({"Date": ""}, "no Date field"),
        (
            {"Date": format_datetime(datetime.fromtimestamp(NOW + 30 * 86400, timezone.utc), usegmt=True)},
            "in the future",
        ),
        ({"Valid-Until": format_datetime(datetime.fromtimestamp(NOW - 60, timezone.utc), usegmt=True)}, "expired on"),
    ],
)
def test_signed_dates_are_enforced_and_a_garbled_one_is_refused(keys, tmp_path, fields, expected):
    signed = keys.sign(release_text(**fields), [keys.first])
    keyring = keys.keyring([keys.first], tmp_path / "k.gpg")
    with pytest.raises(VerificationError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        archive.verify_release(signed, "http://m/dists/trixie/InRelease", "trixie", [str(keyring)], now=NOW)


def test_debians_real_expired_inrelease_is_refused(host_keyring):
    signed = (DATA / "sid-expired.InRelease").read_bytes()
    valid_until = parsedate_to_datetime("Fri, 06 Nov 2026 08:08:01 UTC").timestamp()
    fresh = archive.verify_release(signed, "u/dists/sid/InRelease", "sid", [host_keyring], now=valid_until - 86400)
    assert fresh.codename == "sid" and fresh.signers
    with pytest.raises(VerificationError, match=r"expired on Fri, 06 Nov 2026 08:08:01 UTC \(Valid-Until\)"):
        archive.verify_release(signed, "u/dists/sid/InRelease", "sid", [host_keyring], now=valid_until + 1)


@pytest.fixture
def host_keyring() -> str:
    if not Path(archive.HOST_KEYRING).is_file():
        pytest.skip("needs Debian's archive keyring (apt-get install debian-archive-keyring)")
    return archive.HOST_KEYRING


def test_stanzas_and_checksums_read_continuation_lines_and_comments():
    text = "# a comment\nPackage: a\nDescription: one\n two\n\n\nPackage: b\nSHA256:\n " + "AB" * 32 + " 12 x/y\n"
    first, second = archive.stanzas(text.splitlines())
    assert first == {"Package": "a", "Description": "one\ntwo"}
    assert archive.checksums(second["SHA256"]) == {"x/y": ("ab" * 32, 12)}


def test_stanzas_of_a_package_are_whole_and_only_its_own():
    text = (
        "Package: kexec-tools\nVersion: 1\n\nPackage: kexec-tools-extra\nVersion: 2\n\n"
        "Version: 3\nPackage: kexec-tools\nDirectory: pool/k\n\nPackage: other\n\nPackage: kexec-tools\nVersion: 4"
    )
    assert [stanza.get("Version") for stanza in archive.stanzas_of(text, "kexec-tools")] == ["1", "3", "4"]
    assert list(archive.stanzas_of(text, "kexec-tools"))[1] == {
        "Version": "3",
        "Package": "kexec-tools",
        "Directory": "pool/k",
    }
    assert list(archive.stanzas_of(text, "kexec")) == []


APT_DEB822 = """\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: trixie
Components: main
Enabled: no

Types: deb
URIs: https://third-party.example/node
Suites: nodistro
Components: main
Signed-By: /usr/share/keyrings/nodesource.gpg
"""
APT_ONE_LINE = """\
# deb http://commented.example/debian trixie main
deb [arch=amd64 signed-by=/usr/share/keyrings/vendor.gpg] https://vendor.example/apt trixie main
deb-src http://source.example/debian trixie main
deb [arch=amd64] http://trixie-mirror.example/debian trixie main contrib
deb http://backports.example/debian trixie-backports main
"""


@pytest.fixture
def apt_tree(tmp_path) -> Tree:
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list.d/debian.sources").write_text(APT_DEB822)
    (tmp_path / "etc/apt/sources.list").write_text(APT_ONE_LINE)
    return Tree(str(tmp_path))


def test_apt_sources_in_both_formats_honour_enabled_no(apt_tree):
    found = archive.apt_sources(apt_tree)
    uris = [source.uris[0] for source in found]
    assert "http://disabled.example/debian" not in uris and "http://commented.example/debian" not in uris
    assert archive.debian_archives(found) == [
        ("http://trixie-mirror.example/debian", ("trixie",)),
        ("http://mirror.example/debian", ("bookworm",)),
    ]


def test_the_mirror_is_the_archive_whose_suites_include_the_release(apt_tree):
    assert archive.choose_mirror(None, "trixie", apt_tree) == (
        "http://trixie-mirror.example/debian",
        "mirror: http://trixie-mirror.example/debian, the host's apt source for trixie",
    )
    assert archive.choose_mirror(None, "bookworm", apt_tree)[0] == "http://mirror.example/debian"
    mirror, note = archive.choose_mirror(None, "sid", apt_tree)
    assert mirror == "http://trixie-mirror.example/debian"
    assert "its apt sources list trixie, not sid" in note
    assert archive.choose_mirror("http://given.example/d", "sid", apt_tree)[0] == "http://given.example/d"


def test_without_a_debian_archive_in_apt_sources_the_error_asks_for_mirror(tmp_path):
    (tmp_path / "etc/apt").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list").write_text(APT_ONE_LINE.splitlines()[1] + "\n")
    with pytest.raises(UsageError, match=r"no Debian archive in this host's apt sources.*pass --mirror URL"):
        archive.choose_mirror(None, "trixie", Tree(str(tmp_path)))


def test_an_apt_sources_fifo_is_skipped_not_waited_on(tmp_path):
    import os

    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    os.mkfifo(tmp_path / "etc/apt/sources.list.d/trap.list")
    (tmp_path / "etc/apt/sources.list").write_text("deb http://m.example/debian trixie main\n")
    assert archive.debian_archives(archive.apt_sources(Tree(str(tmp_path)))) == [
        ("http://m.example/debian", ("trixie",))
    ]


@pytest.mark.parametrize("name", ["book worm", "../etc", "Trixie", "", "sid\n", "a" * 80])
def test_a_release_name_that_is_no_suite_is_a_usage_error(name):
    with pytest.raises(UsageError, match="is not a Debian suite or codename"):
        archive.check_suite(name)
