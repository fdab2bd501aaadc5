"""`kexec-bin netboot debian` against a loopback mirror made of Debian's real, signed files.

The mirror serves the archive's real InRelease and installer SHA256SUMS for bookworm (fetched once
from the host's own archive and kept in the cache) and the netboot kernel and initrd from Debian's
debian-installer-12-netboot-amd64 package, byte-identical to the archive's images. The keyring is
the host's real Debian archive keyring. Every refusal is checked with a kexec that records its
calls: nothing may be loaded.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable

import pytest

from kexec_bin import cli
from kexec_bin.debian import archive
from kexec_bin.errors import EXIT_DATA, EXIT_TEMPORARY
from kexec_build import bundled
from kexec_build.testbed import netboot_mirror
from tests.runtime.installed import system_kexec

IMAGES = "dists/bookworm/main/installer-amd64/current/images"
INITRD = f"{IMAGES}/netboot/debian-installer/amd64/initrd.gz"
KERNEL = f"{IMAGES}/netboot/debian-installer/amd64/linux"
pytestmark = pytest.mark.skipif(
    not Path(archive.HOST_KEYRING).is_file(),
    reason="needs Debian's archive keyring (apt-get install debian-archive-keyring)",
)


@pytest.fixture(scope="module")
def real_files() -> dict[str, bytes]:
    return netboot_mirror.files("bookworm", "amd64")


@pytest.fixture
def mirror(httpserver, real_files):
    """Serve the real files under /debian/, with `changes` (path → bytes, (bytes, content type), or None
    for a 404); returns the mirror URL."""

    httpserver.no_handler_status_code = 404  # a file the mirror lacks, as a real mirror answers

    def serve(changes: dict[str, bytes | tuple[bytes, str] | None] | None = None) -> str:
        files = {**real_files, **(changes or {})}
        for path, body in files.items():
            respond = httpserver.expect_request(f"/debian/{path}")
            if body is None:
                respond.respond_with_data("Not Found", status=404, content_type="text/plain")
            else:
                data, kind = body if isinstance(body, tuple) else (body, "application/octet-stream")
                respond.respond_with_data(data, content_type=kind)
        return httpserver.url_for("/debian")

    return serve


@pytest.fixture
def netboot(tmp_path, tree, monkeypatch, capsys):
    """Run `kexec-bin netboot debian …` over the healthy tree with a kexec that records its calls."""
    calls = tmp_path / "kexec-calls"
    # It records its arguments, and keeps a copy of the initrd it was given (the plan's is temporary).
    sbin = system_kexec(
        tmp_path / "sbin",
        f'echo "$@" >> {calls}\n'
        f'for word; do case $word in --initrd=*) cp "${{word#--initrd=}}" {tmp_path}/loaded-initrd;; esac; done\n',
    )
    monkeypatch.setenv("PATH", f"{sbin}:/usr/bin:/bin")
    monkeypatch.setenv("KEXEC_BIN_PREFER", "system")
    monkeypatch.setenv("KEXEC_BIN_CACHE", str(tmp_path / "cache"))
    tree.write("/proc/meminfo", "MemTotal: 2048000 kB\nMemAvailable: 1900000 kB\n")
    tree.write("/proc/cmdline", "root=/dev/vda ro console=tty0 console=ttyS0,115200\n")

    def run(*args: str) -> tuple[int, str, str, list[str]]:
        # A plan is made over the tree; a load (--root goes with --dry-run only) on this host, past the
        # doctor's preflight, which this host's kernel may fail (test_plan_core tests it), into the recording kexec.
        loads = "--load-only" in args or "--yes" in args
        monkeypatch.setenv("KEXEC_BIN_NO_CHECK", "1" if loads else "")
        status = cli.main(["netboot", "debian", *([] if loads else ["--root", str(tree.root)]), *args])
        out, err = capsys.readouterr()
        return status, out, err, calls.read_text().splitlines() if calls.exists() else []

    return Netboot(run, tree, tmp_path / "loaded-initrd", tmp_path / "cache")


@dataclass(frozen=True)
class Netboot:
    """`kexec-bin netboot debian` over a tree: call it with the arguments; (status, out, err, kexec calls)."""

    run: Callable[..., tuple[int, str, str, list[str]]]
    tree: Any
    loaded_initrd: Path
    """The initrd the recording kexec was given last."""
    cache: Path

    def __call__(self, *args: str) -> tuple[int, str, str, list[str]]:
        return self.run(*args)


def test_load_only_loads_the_verified_installer(netboot, mirror, real_files):
    status, out, err, calls = netboot(
        "--mirror",
        mirror(),
        "--release",
        "bookworm",
        "--network",
        "dhcp",
        "--console",
        "ttyS0,115200",
        "--load-only",
        "--append",
        "priority=low",
    )
    assert status == 0, err
    kernel = netboot.cache / "downloads" / "sha256" / netboot_mirror.sha256(real_files[KERNEL])
    initrd = netboot.cache / "downloads" / "sha256" / netboot_mirror.sha256(real_files[INITRD])
    # The installer's initrd joined with the way back's deadline (see test_wayback) into one for kexec.
    (call,) = calls
    joined = call.split("--initrd=", 1)[1].split(" ", 1)[0]
    assert call == (
        f"--load --kexec-syscall-auto --initrd={joined} "
        f"--command-line=console=ttyS0,115200 priority=low panic=30 -- {kernel}"
    )
    assert f"initrd  {initrd} (" in out
    assert kernel.read_bytes() == real_files[KERNEL]
    signers = netboot_mirror.signers(real_files["dists/bookworm/InRelease"])
    assert signers and all(f"[{fingerprint}]" in out for fingerprint in signers)
    assert f"] (keyring {archive.HOST_KEYRING}); Suite oldstable, Codename bookworm" in out
    assert f"checked: sha256 {netboot_mirror.sha256(real_files[INITRD])} listed in SHA256SUMS" in out
    assert "loaded with " in out and "boot it with `systemctl kexec`" in out


@pytest.mark.parametrize("release", ["oldstable", "12"])
def test_a_suite_or_number_resolves_through_the_signed_release_fields(netboot, mirror, release):
    status, out, err, calls = netboot("--mirror", mirror(), "--release", release, "--network", "dhcp")
    assert status == 0, err
    assert "plan: Debian 12." in out and "(bookworm) installer, netboot, amd64" in out
    # The running kernel's consoles, and the way back's panic= (test_wayback).
    assert "command line: console=tty0 console=ttyS0,115200 panic=30\n" in out
    assert "dry run: nothing loaded" in out and calls == []


def test_a_mirror_answering_with_another_release_is_refused(netboot, mirror, real_files):
    url = mirror({"dists/trixie/InRelease": real_files["dists/bookworm/InRelease"]})
    status, _, err, calls = netboot("--mirror", url, "--release", "trixie", "--load-only")
    assert status == EXIT_DATA and calls == []
    assert "is signed for Suite 'oldstable', Codename 'bookworm', not 'trixie'" in err


def test_a_changed_byte_in_inrelease_breaks_the_signature(netboot, mirror, real_files):
    signed = real_files["dists/bookworm/InRelease"]
    at = signed.index(b"\nSHA256:\n") + 10
    tampered = signed[:at] + bytes([signed[at] ^ 1]) + signed[at + 1 :]
    status, _, err, calls = netboot(
        "--mirror", mirror({"dists/bookworm/InRelease": tampered}), "--release", "bookworm", "--load-only"
    )
    assert status == EXIT_DATA and calls == []
    assert "/dists/bookworm/InRelease: signature not valid with keyring" in err and "BAD signature" in err


def test_inrelease_signed_by_a_throwaway_key_is_refused(netboot, mirror, real_files):
    resigned = netboot_mirror.resign(real_files["dists/bookworm/InRelease"])
    status, _, err, calls = netboot(
        "--mirror", mirror({"dists/bookworm/InRelease": resigned}), "--release", "bookworm", "--load-only"
    )
    assert status == EXIT_DATA and calls == []
    assert "signature not valid" in err and "No public key" in err


def test_an_altered_sha256sums_is_refused_and_never_cached(netboot, mirror, real_files):
    # Another kernel's hash in place of the real one: the same size, so only the signed sha256 can tell.
    kernel_hash = netboot_mirror.sha256(real_files[KERNEL]).encode()
    sums = real_files[f"{IMAGES}/SHA256SUMS"].replace(
        kernel_hash, hashlib.sha256(b"another kernel").hexdigest().encode()
    )
    status, _, err, calls = netboot(
        "--mirror", mirror({f"{IMAGES}/SHA256SUMS": sums}), "--release", "bookworm", "--load-only"
    )
    assert status == EXIT_DATA and calls == []
    expected = netboot_mirror.signed_sha256(
        real_files["dists/bookworm/InRelease"], "main/installer-amd64/current/images/SHA256SUMS"
    )
    assert f"amd64 SHA256SUMS: sha256 mismatch: expected {expected}, got {netboot_mirror.sha256(sums)}" in err
    assert _cached(netboot.cache) == []


def test_a_truncated_initrd_is_refused_and_never_cached(netboot, mirror, real_files):
    initrd = real_files[INITRD]
    status, _, err, calls = netboot(
        "--mirror", mirror({INITRD: initrd[: len(initrd) // 2]}), "--release", "bookworm", "--load-only"
    )
    assert status == EXIT_DATA and calls == []
    assert (
        f"netboot/debian-installer/amd64/initrd.gz: sha256 mismatch: expected {netboot_mirror.sha256(initrd)}, "
        f"got {netboot_mirror.sha256(initrd[: len(initrd) // 2])} ({len(initrd) // 2} bytes"
    ) in err
    assert netboot_mirror.sha256(initrd) not in _cached(netboot.cache)


def test_an_html_page_instead_of_the_kernel_is_refused(netboot, mirror):
    page = (b"<html><body>Please log in to use this network</body></html>", "text/html; charset=utf-8")
    status, _, err, calls = netboot("--mirror", mirror({KERNEL: page}), "--release", "bookworm", "--load-only")
    assert status == EXIT_TEMPORARY and calls == []
    assert f"/debian/{KERNEL}: the server sent an HTML page (text/html; charset=utf-8), not the file" in err


def test_a_missing_file_is_a_404_naming_the_url(netboot, mirror):
    status, _, err, calls = netboot("--mirror", mirror({INITRD: None}), "--release", "bookworm", "--load-only")
    assert status == EXIT_TEMPORARY and calls == []
    assert f"/debian/{INITRD}: HTTP 404" in err


def test_another_architecture_than_the_machine_is_refused_before_any_download(netboot):
    status, _, err, calls = netboot("--mirror", "http://127.0.0.1:9/unused", "--arch", "arm64", "--load-only")
    assert status == 1 and calls == []
    assert "--arch arm64: this machine runs amd64, and kexec boots kernels of the running architecture only" in err


def test_an_architecture_without_an_installer_in_the_release_is_refused(netboot, mirror):
    status, _, err, calls = netboot("--mirror", mirror(), "--release", "bookworm", "--arch", "riscv64")
    assert status == 1 and calls == []  # no plan can be made: nothing failed verification
    assert "Debian bookworm ships no installer for riscv64 (its InRelease lists installers for amd64, arm64," in err


def test_without_gpgv_the_error_names_the_package(netboot, mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "sbin"))  # the recording kexec only: no gpgv
    status, _, err, calls = netboot("--mirror", mirror(), "--release", "bookworm", "--load-only")
    assert status == EXIT_DATA and calls == []
    assert "gpgv is not installed" in err and "install the gpgv package" in err


def installer_minimum_mib(initrd_gz: bytes, arch: str) -> int:
    """The RAM below which the installer in `initrd_gz` refuses to run on `arch`: the `min` level of its own
    lowmem check (rootskel's S15lowmem), read from the initrd with cpio."""
    script = subprocess.run(
        ["cpio", "-i", "--quiet", "--to-stdout", "lib/debian-installer-startup.d/S15lowmem"],
        input=gzip.decompress(initrd_gz),
        capture_output=True,
        check=True,
    ).stdout.decode()
    case = re.search(rf"(?ms)^\s*(?:[\w-]+\|)*{arch}(?:\|[\w-]+)*\)$(.*?);;", script)
    level = re.search(r"\bmin=(\d+)", case[1]) if case else None
    assert level, f"S15lowmem names no minimum for {arch}"
    return int(level[1])


def test_not_enough_memory_is_refused_with_numbers(netboot, mirror, real_files):
    netboot.tree.write("/proc/meminfo", "MemTotal: 262144 kB\nMemAvailable: 204800 kB\n")
    status, _, err, calls = netboot("--mirror", mirror(), "--release", "bookworm", "--network", "dhcp", "--dry-run")
    assert status == 1 and calls == []
    minimum = installer_minimum_mib(real_files[INITRD], "amd64")
    needed = len(real_files[KERNEL]) + len(real_files[INITRD]) + (minimum << 20)
    assert f"not enough memory: the plan needs about {needed / (1 << 20):.1f} MiB and 200.0 MiB is available" in err


def test_network_keep_preseeds_the_default_route_as_ip_reports_it(netboot, mirror):
    route = json.loads(
        subprocess.run(
            ["ip", "-j", "-4", "route", "show", "default"], capture_output=True, text=True, check=True
        ).stdout
    )
    if not route:
        pytest.skip("this host has no IPv4 default route to keep")
    device = route[0]["dev"]
    (link,) = json.loads(
        subprocess.run(
            ["ip", "-j", "-4", "addr", "show", "dev", device], capture_output=True, text=True, check=True
        ).stdout
    )
    address = link["addr_info"][0]
    mac = Path(f"/sys/class/net/{device}/address").read_text().strip()  # the installer finds the NIC by it
    netboot.tree.write("/proc/net/route", Path("/proc/net/route").read_text())
    netboot.tree.write("/etc/resolv.conf", "search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\n")
    status, out, err, _ = netboot("--mirror", mirror(), "--release", "bookworm", "--network", "keep")
    assert status == 0, err
    assert (
        f"netcfg/choose_interface={mac} netcfg/disable_autoconfig=true netcfg/get_ipaddress={address['local']} "
    ) in out
    assert f"netcfg/get_gateway={route[0]['gateway']} netcfg/get_nameservers=192.0.2.53 " in out
    assert "netcfg/get_domain=example.org" in out
    assert f"network: static {address['local']}/{address['prefixlen']} via {route[0]['gateway']} on {device}" in out


def test_a_preseed_file_travels_as_an_extra_initrd_after_the_installers(netboot, mirror, real_files, tmp_path):
    preseed = tmp_path / "preseed.cfg"
    preseed.write_text("d-i debian-installer/locale string en_US.UTF-8\n")
    status, out, err, _ = netboot(
        "--mirror", mirror(), "--release", "bookworm", "--network", "dhcp", "--preseed", str(preseed), "--load-only"
    )
    assert status == 0, err
    assert f"from {preseed}" in out
    loaded = netboot.loaded_initrd.read_bytes()
    assert loaded.startswith(real_files[INITRD])
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["cpio", "-id", "--quiet"], input=loaded[len(real_files[INITRD]) :], cwd=unpacked, check=True)
    assert [path.name for path in unpacked.iterdir()] == ["preseed.cfg"]
    assert (unpacked / "preseed.cfg").read_bytes() == preseed.read_bytes()


def test_the_installers_own_fetch_url_turns_the_key_parameter_back_into_the_keys(
    netboot, mirror, real_files, keys, tmp_path
):
    """The netboot initrd's base64 fetch method, run by its own busybox shell (chrooted into the
    unpacked initrd), writes exactly the keys from the parameter kexec-bin put on the command line."""
    if os.geteuid() != 0:
        pytest.skip("chrooting into the installer's initrd needs root")
    status, _, err, calls = netboot(
        "--mirror", mirror(), "--release", "bookworm", "--network", "dhcp", "--ssh-key", str(keys), "--load-only"
    )
    assert status == 0, err
    given = re.search(r"network-console/authorized_keys_url=(\S+)", calls[0])
    assert given, calls[0]
    url = given.group(1)
    root = tmp_path / "initrd"
    root.mkdir()
    subprocess.run(["cpio", "-id", "--quiet"], input=gzip.decompress(real_files[INITRD]), cwd=root, check=True)
    fetch = '. /usr/lib/fetch-url/base64 && protocol_fetch "$1" /authorized_keys && cat /authorized_keys'
    fetched = subprocess.run(
        ["chroot", str(root), "/bin/sh", "-c", fetch, "sh", url],
        capture_output=True,
        text=True,
        env={"PATH": "/bin:/sbin:/usr/bin:/usr/sbin"},
        check=True,
    ).stdout
    assert fetched.splitlines() == keys.read_text().splitlines()[1::2]


def _ssh_keygen(path: Path, kind: str, comment: str) -> Path:
    """A real key pair made by OpenSSH's ssh-keygen; returns the private key's path (the public one adds .pub)."""
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    """An authorized_keys file as people keep them: a comment, an ed25519 key, an RSA key with options.
    Made once for the module (no test changes it): an RSA key pair costs ssh-keygen up to a second."""
    tmp_path = tmp_path_factory.mktemp("keys")
    ed25519 = _ssh_keygen(tmp_path / "id_ed25519", "ed25519", "me@laptop").with_suffix(".pub").read_text().strip()
    rsa = _ssh_keygen(tmp_path / "id_rsa", "rsa", "backup@desk").with_name("id_rsa.pub").read_text().strip()
    keys = tmp_path / "authorized_keys"
    keys.write_text(f'# who may log in to the installer\n{ed25519}\n\nfrom="192.0.2.0/24",no-pty {rsa}\n')
    return keys


def test_ssh_key_file_starts_network_console_with_the_keys_on_the_command_line(netboot, mirror, keys):
    status, out, err, calls = netboot(
        "--mirror", mirror(), "--release", "bookworm", "--network", "dhcp", "--ssh-key", str(keys), "--load-only"
    )
    assert status == 0, err
    (call,) = calls
    # The network-console answers, then the way back's panic= (test_wayback) last.
    parameters = call.split("--command-line=", 1)[1].split(" -- ", 1)[0].split()
    assert parameters[-1] == "panic=30"
    parameters = parameters[:-1]
    assert parameters[-3] == "anna/choose_modules=network-console"
    assert parameters[-1] == "network-console/password-disabled=true"
    name, _, url = parameters[-2].partition("=")
    assert name == "network-console/authorized_keys_url" and url.startswith("base64://")
    # What the installer's fetch-url base64 method writes: the key lines, the comment and blank line dropped.
    assert base64.b64decode(url[len("base64://") :]).decode().splitlines() == keys.read_text().splitlines()[1::2]
    assert call.count("--initrd=") == 1  # nothing beside the installer's own initrd
    assert f"ssh: network-console with 2 authorized keys from {keys}, on the command line" in out
    assert (
        "kexec-bin: warning: --ssh-key: network-console and openssh-server-udeb are not in the netboot initrd; the "
        "installer downloads them from its own Debian mirror" in err
    )


def test_ssh_key_url_is_handed_to_the_installer(netboot, mirror):
    url = "https://keys.example.org/me.keys"
    status, out, err, calls = netboot(
        "--mirror", mirror(), "--release", "bookworm", "--network", "dhcp", "--ssh-key", url, "--append", "priority=low"
    )
    assert status == 0, err
    assert (
        f"command line: console=tty0 console=ttyS0,115200 anna/choose_modules=network-console "
        f"network-console/authorized_keys_url={url} network-console/password-disabled=true priority=low"
    ) in out
    assert f"ssh: network-console takes its authorized keys from {url}, fetched by the installer (https)" in out
    assert "dry run: nothing loaded" in out and calls == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("private", "this is a private key, which must not leave this machine; give the public one"),
        ("empty", "holds no public key; give an OpenSSH public key file"),
        ("comments only", "holds no public key"),
        (
            "garbage",
            "line 2 is not an OpenSSH public key (it starts 'hello world, this is not'); expected a line "
            "like `ssh-ed25519",
        ),
        ("mislabelled", "line 1 is not an OpenSSH public key (it starts 'ssh-rsa AAAAC3NzaC1lZDI1'"),
        ("dsa", "line 1 is not an OpenSSH public key (it starts 'ssh-dss AAAA"),
        (
            "missing",
            "cannot read the public key file '{path}': No such file or directory; give an OpenSSH public key file "
            "(like ~/.ssh/id_ed25519.pub) or an https URL",
        ),
        (
            "too many",
            "{size} bytes of keys are too long for the kernel command line ({encoded} characters encoded, "
            "1024 allowed); keep fewer keys",
        ),
    ],
)
def test_a_bad_ssh_key_file_is_refused_before_any_download(netboot, mirror, httpserver, tmp_path, keys, case, expected):
    good = keys.read_text().splitlines()[1]
    path = tmp_path / "given"
    if case == "private":
        path = _ssh_keygen(tmp_path / "id_private", "ed25519", "secret")
    elif case == "empty":
        path.write_text("")
    elif case == "comments only":
        path.write_text("# nothing here yet\n\n")
    elif case == "garbage":
        path.write_text(f"{good}\nhello world, this is not a key\n")
    elif case == "mislabelled":  # an ed25519 key's blob labelled ssh-rsa: the right shape, the wrong key
        path.write_text(f"ssh-rsa {good.split()[1]} x\n")
    elif case == "dsa":  # OpenSSH's sshd no longer accepts DSA keys
        blob = base64.b64encode(len(b"ssh-dss").to_bytes(4, "big") + b"ssh-dss" + bytes(64)).decode()
        path.write_text(f"ssh-dss {blob} old@box\n")
    elif case == "missing":
        expected = expected.format(path=path)
    elif case == "too many":
        path.write_text("".join(f"{line}\n" for line in keys.read_text().splitlines() if line.startswith("from=")) * 3)
        size = path.stat().st_size
        expected = expected.format(size=size, encoded=len("base64://") + 4 * -(-size // 3))
    status, _, err, calls = netboot(
        "--mirror", mirror(), "--release", "bookworm", "--network", "dhcp", "--ssh-key", str(path), "--load-only"
    )
    assert status == 1 and calls == [] and httpserver.log == []  # refused before any download
    assert f"kexec-bin: --ssh-key {path}: {expected}" in err


@pytest.mark.parametrize("url", ["http://keys.example.org/me.keys", "ftp://keys.example.org/me.keys"])
def test_an_ssh_key_url_that_is_not_https_is_refused(netboot, mirror, httpserver, url):
    status, _, err, calls = netboot("--mirror", mirror(), "--release", "bookworm", "--ssh-key", url, "--load-only")
    assert status == 1 and calls == [] and httpserver.log == []
    assert f"--ssh-key {url}: give an https URL (the installer's wget checks its certificate)" in err


def _cached(cache: Path) -> list[str]:
    folder = cache / "downloads" / "sha256"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def test_without_a_host_keyring_the_copy_the_wheel_ships_verifies(netboot, mirror, monkeypatch, tmp_path):
    (keyring,) = [item for item in bundled.load() if item.name == "debian-archive-keyring"]
    shipped = keyring.file()  # what the wheel build puts at kexec_bin/keyrings/
    monkeypatch.setattr(archive, "HOST_KEYRING", str(tmp_path / "absent.gpg"))
    monkeypatch.setattr(archive, "BUNDLED_KEYRING", str(shipped))
    status, out, err, _ = netboot("--mirror", mirror(), "--release", "bookworm", "--network", "dhcp")
    assert status == 0, err
    assert f"(keyring {shipped}); Suite oldstable" in out


def test_a_missing_keyring_file_is_named(netboot, mirror, tmp_path):
    status, _, err, calls = netboot("--mirror", mirror(), "--keyring", str(tmp_path / "nope.gpg"), "--load-only")
    assert status == EXIT_DATA and calls == []
    assert f"--keyring {tmp_path / 'nope.gpg'}: no such file" in err


def test_a_damaged_cached_file_is_fetched_again_and_a_good_one_is_not(netboot, mirror, real_files, httpserver):
    url = mirror()
    assert netboot("--mirror", url, "--release", "bookworm", "--network", "dhcp")[0] == 0
    cached = netboot.cache / "downloads" / "sha256" / netboot_mirror.sha256(real_files[INITRD])
    cached.write_bytes(real_files[INITRD][:-1])  # as a crash before the data reached the disk could leave it
    served = len(httpserver.log)
    status, _, err, _ = netboot("--mirror", url, "--release", "bookworm", "--network", "dhcp")
    assert status == 0, err
    assert cached.read_bytes() == real_files[INITRD]
    again = [request.path for request, _ in httpserver.log[served:]]
    assert again == ["/debian/dists/bookworm/InRelease", f"/debian/{INITRD}"]


def test_a_server_error_is_tried_again(netboot, mirror, httpserver):
    httpserver.expect_oneshot_request(f"/debian/{INITRD}").respond_with_data("busy", status=503)
    status, _, err, _ = netboot("--mirror", mirror(), "--release", "bookworm", "--network", "dhcp")
    assert status == 0, err
    answers = [response.status_code for request, response in httpserver.log if request.path == f"/debian/{INITRD}"]
    assert answers == [503, 200]


def test_a_release_older_than_half_a_year_is_flagged_as_a_frozen_mirror(mirror, real_files):
    url = mirror()
    signed = re.search(rb"^Date: (.*)$", real_files["dists/bookworm/InRelease"], re.M)
    assert signed, "the real InRelease has a Date line"
    date = parsedate_to_datetime(signed.group(1).decode()).timestamp()
    fresh = archive.fetch_release(url, "bookworm", [archive.HOST_KEYRING], now=date + 30 * 86400)
    frozen = archive.fetch_release(url, "bookworm", [archive.HOST_KEYRING], now=date + 200 * 86400)
    assert fresh.staleness() is None
    assert frozen.staleness() == (
        f"{url}/dists/bookworm/InRelease was signed 200 days ago; Debian re-signs a release "
        "at each point release, so this mirror may have stopped following the archive: "
        "try another --mirror"
    )
