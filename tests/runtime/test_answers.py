"""The installer's boot-parameter answers refuse what would smuggle kernel parameters or hang the plan.

`kexec-bin netboot debian` against the loopback mirror of Debian's real signed files (the fixtures of
test_netboot.py), with a kexec that records its calls: every refusal loads nothing.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.runtime.test_netboot import mirror, netboot, real_files  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not os.path.isfile("/usr/share/keyrings/debian-archive-keyring.gpg"), reason="keyring")

BOOKWORM = ("--release", "bookworm", "--network", "dhcp")


@pytest.mark.parametrize(
    "preseed",
    ["http://h/p.cfg init=/bin/sh", "https://h/p.cfg\ninit=/bin/sh", 'https://h/p.cfg"', "https://h/p.cfg\tx=1"],
)
def test_a_preseed_url_cannot_carry_kernel_parameters(netboot, mirror, preseed):  # noqa: F811
    status, _, err, calls = netboot("--mirror", mirror(), *BOOKWORM, "--preseed", preseed, "--load-only")
    assert status == 1 and calls == []
    assert "--preseed" in err and "would change the installer's kernel command line" in err


def test_a_plain_http_preseed_is_pinned_by_the_checksum_the_installer_checks(netboot, mirror, httpserver):  # noqa: F811
    body = b"d-i debian-installer/locale string en_US.UTF-8\n"
    httpserver.expect_request("/preseed.cfg").respond_with_data(body)
    url = httpserver.url_for("/preseed.cfg")
    status, out, err, _ = netboot("--mirror", mirror(), *BOOKWORM, "--preseed", url)
    assert status == 0, err
    checksum = hashlib.md5(body).hexdigest()
    assert f"preseed/url={url} preseed/url/checksum={checksum}" in out
    assert f"checks it is the {len(body)} bytes read here (preseed/url/checksum MD5 {checksum})" in out


def test_an_https_preseed_is_left_to_the_installers_certificate_check(netboot, mirror):  # noqa: F811
    status, out, err, _ = netboot("--mirror", mirror(), *BOOKWORM, "--preseed", "https://example.org/p.cfg")
    assert status == 0, err
    assert "preseed/url=https://example.org/p.cfg" in out and "checksum" not in out


@pytest.mark.parametrize("option", ["--preseed", "--ssh-key"])
def test_a_fifo_as_preseed_or_key_is_refused_without_waiting(netboot, mirror, tmp_path, option):  # noqa: F811
    fifo = tmp_path / "answers"
    os.mkfifo(fifo)
    status, _, err, calls = netboot("--mirror", mirror(), *BOOKWORM, option, str(fifo), "--load-only")
    assert status == 1 and calls == []
    assert f"{fifo}' is a FIFO, not a regular file" in err


def test_dev_zero_as_preseed_is_refused_without_reading_it(netboot, mirror):  # noqa: F811
    status, _, err, calls = netboot("--mirror", mirror(), *BOOKWORM, "--preseed", "/dev/zero", "--load-only")
    assert status == 1 and calls == []
    assert "'/dev/zero' is a character device, not a regular file" in err


def test_a_huge_preseed_file_is_refused_at_its_cap(netboot, mirror, tmp_path):  # noqa: F811
    big = tmp_path / "big.cfg"
    big.write_bytes(b"#" * (2 << 20))
    status, _, err, calls = netboot("--mirror", mirror(), *BOOKWORM, "--preseed", str(big), "--load-only")
    assert status == 1 and calls == []
    assert "is larger than 1048576 bytes" in err


@pytest.mark.parametrize("console", ['ttyS0,115200"', "ttyS0'", "tty\\S0", "ttyS0\ninit=1"])
def test_quotes_and_line_breaks_in_console_are_refused(netboot, mirror, console):  # noqa: F811
    status, _, err, calls = netboot("--mirror", mirror(), *BOOKWORM, "--console", console, "--load-only")
    assert status == 1 and calls == []
    assert "--console" in err and "would change the installer's kernel command line" in err


@pytest.mark.parametrize(
    "table",
    [
        "Iface\tDestination\tGateway\n",  # the header only
        "Iface\tDestination\tGateway\tFlags\nbogus\n",  # a short row
        "Iface Destination Gateway Flags RefCnt Use Metric Mask\neth0 00000000 zz 0003 0 0 0 00000000\n",
        "\xff\xfe garbage\n\x00\x01",
    ],
)
def test_a_malformed_route_table_under_root_means_no_route_to_keep(netboot, mirror, table):  # noqa: F811
    netboot.tree.write("/proc/net/route", table.encode("latin-1"))
    status, out, err, _ = netboot("--mirror", mirror(), "--release", "bookworm")
    assert status == 0, err
    assert "network: no default route here, so the installer asks DHCP" in out
    status, _, err, _ = netboot("--mirror", mirror(), "--release", "bookworm", "--network", "keep")
    assert status == 1 and "--network keep: this machine has no default route to keep" in err


def test_a_fifo_as_route_table_under_root_is_not_waited_on(netboot, mirror):  # noqa: F811
    (netboot.tree.root / "proc/net").mkdir(parents=True, exist_ok=True)
    os.mkfifo(netboot.tree.root / "proc/net/route")
    status, out, err, _ = netboot("--mirror", mirror(), "--release", "bookworm")
    assert status == 0, err
    assert "network: no default route here, so the installer asks DHCP" in out


def test_a_default_route_on_an_interface_that_is_not_here_falls_back_to_dhcp(netboot, mirror):  # noqa: F811
    # The route names an interface this kernel does not have (so no IPv4 address on it): auto asks DHCP.
    netboot.tree.write(
        "/proc/net/route",
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "nosuch9\t00000000\t017100CB\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
    )
    status, out, err, _ = netboot("--mirror", mirror(), "--release", "bookworm")
    assert status == 0, err
    assert "network: the default route's interface nosuch9 has no IPv4 address and no static IPv6 one" in out
    status, _, err, _ = netboot("--mirror", mirror(), "--release", "bookworm", "--network", "keep")
    assert status == 1 and "nothing to keep; use --network dhcp" in err
