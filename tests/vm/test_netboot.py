"""The remote-reinstall story: a plain Debian guest without kexec-tools pip installs the wheel, and
`kexec-bin netboot debian --yes` takes it into the Debian installer on its serial console.

The mirror is a loopback server on the host (10.0.2.2 from inside QEMU's user network) holding the
archive's real signed InRelease and SHA256SUMS and Debian's own netboot kernel and initrd.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import time

import pytest

from kexec_build import netboot_mirror
from kexec_build.vm.debian_guest import (
    USER_NET_DNS,
    USER_NET_HOST,
    USER_NIC,
    pip_install,
    set_static_address,
    start_with_wheel,
)
from kexec_build.vm.guests import INSTALLER_MAIN_MENU, INSTALLER_SECONDS
from kexec_build.vm.machine import Machine

pytestmark = pytest.mark.vm

# Download (about 40 MB through QEMU's user network), gpgv and two sha256 sums, under TCG.
NETBOOT_SECONDS = 600


def _guest_on_the_mirror(
    vm, tmp_path, httpserver, address: str, files: dict[str, bytes] | None = None
) -> tuple[Machine, str, str]:
    """The pip-installed guest with a static `address`, and a mirror serving `files` (default: bookworm's
    images); returns the guest, its NIC's name and the mirror's URL."""
    httpserver.no_handler_status_code = 404  # a file the mirror lacks, as a real mirror answers
    for path, data in (files or netboot_mirror.files("bookworm", "amd64")).items():
        httpserver.expect_request(f"/debian/{path}").respond_with_data(data, content_type="application/octet-stream")
    machine, wheel = start_with_wheel(vm.start, tmp_path, qemu_options=USER_NIC)
    assert machine.run("command -v kexec || echo absent") == "absent"
    nic = set_static_address(machine, address)
    pip_install(machine, f"/mnt/{wheel}")
    return machine, nic, f"http://{USER_NET_HOST}:{httpserver.port}/debian"


def _plan(machine: Machine) -> str:
    """What the command printed, from its plan to its last line before the boot."""
    return machine.expect(
        r"(?s)plan: Debian 12\.\d+ \(bookworm\) installer, netboot, amd64.*?booting: [^\n]*\n", NETBOOT_SECONDS
    ).group()


def test_netboot_from_the_pip_installed_wheel_reaches_the_installers_main_menu(vm, tmp_path, httpserver):
    machine, nic, mirror = _guest_on_the_mirror(vm, tmp_path, httpserver, "10.0.2.15")
    machine.send(
        f"kexec-bin netboot debian --mirror {mirror} --release bookworm --append priority=low --yes --exec-after 1"
    )
    plan = _plan(machine)
    assert "good signature by" in plan and "(keyring /usr/share/keyrings/debian-archive-keyring.gpg)" in plan
    assert f"network: static 10.0.2.15/24 via {USER_NET_HOST} on {nic}, DNS {USER_NET_DNS}" in plan
    assert f"command line: console=ttyS0 netcfg/choose_interface={nic}" in plan
    assert "loaded with" in plan and "(bundled)" in plan
    assert "booting: no systemd; sync, remount every filesystem read-only, then kexec -e" in plan
    machine.expect(INSTALLER_MAIN_MENU, INSTALLER_SECONDS)


def test_the_trixie_installer_by_the_package_pool_path_reaches_its_main_menu(vm, tmp_path, httpserver):
    # A mirror of dists/ and pool/ only, as partial mirrors and package caches are: trixie's signed
    # InRelease, its main/binary-amd64/Packages.xz and the 145 MiB debian-installer-13-netboot-amd64 .deb.
    files = netboot_mirror.pool_files("trixie", "amd64")
    machine, _, mirror = _guest_on_the_mirror(vm, tmp_path, httpserver, "10.0.2.15", files)
    machine.send(
        f"kexec-bin netboot debian --mirror {mirror} --release trixie --append priority=low --yes --exec-after 1"
    )
    plan = machine.expect(
        r"(?s)plan: Debian 13\.\d+ \(trixie\) installer, netboot, amd64.*?booting: [^\n]*\n", NETBOOT_SECONDS
    ).group()
    assert "pool path: images/SHA256SUMS cannot be fetched (" in plan
    assert "using the signed package debian-installer-13-netboot-amd64 " in plan
    assert "loaded with" in plan
    machine.expect(INSTALLER_MAIN_MENU, INSTALLER_SECONDS)


def test_the_installer_keeps_the_static_address_and_reads_the_preseed_file(vm, tmp_path, httpserver):
    # An address QEMU's DHCP would not hand out first, and a preseed file that points the
    # installer's own mirror at the loopback server: its first request there proves it came up
    # on the network it was given, without a question.
    machine, nic, mirror = _guest_on_the_mirror(vm, tmp_path, httpserver, "10.0.2.77")
    httpserver.expect_request("/debian/dists/bookworm/Release").respond_with_data("", status=404)
    preseed = "\\n".join(
        [  # one console line: printf turns each \n into a line break
            "d-i debian-installer/locale string en_US.UTF-8",
            "d-i keyboard-configuration/xkb-keymap select us",
            "d-i mirror/country string manual",
            f"d-i mirror/http/hostname string {USER_NET_HOST}:{httpserver.port}",
            "d-i mirror/http/directory string /debian",
            "d-i mirror/http/proxy string",
        ]
    )
    machine.run(f"printf '{preseed}\\n' > /root/preseed.cfg")
    machine.send(
        f"kexec-bin netboot debian --mirror {mirror} --release bookworm --network keep "
        "--preseed /root/preseed.cfg --append priority=critical --yes --exec-after 1"
    )
    plan = _plan(machine)
    assert f"netcfg/get_ipaddress=10.0.2.77 netcfg/get_netmask=255.255.255.0 netcfg/get_gateway={USER_NET_HOST}" in plan
    assert "preseed: /root/preseed.cfg as /preseed.cfg in an extra initrd" in plan
    machine.expect(f"Detecting link on {nic}", INSTALLER_SECONDS)  # the interface it was told to use
    deadline = time.monotonic() + INSTALLER_SECONDS
    while not any(request.path == "/debian/dists/bookworm/Release" for request, _ in httpserver.log):
        assert time.monotonic() < deadline, f"the installer never asked the mirror for Release:\n{machine.tail()}"
        time.sleep(2)
    installer = machine.tail(100_000).split("booting: no systemd", 1)[1]
    assert "DHCP" not in installer  # netcfg took the static answers: no "Configuring the network with DHCP"


def test_the_installer_takes_the_ssh_key_options_into_its_debconf_database(vm, tmp_path, httpserver):
    # network-console itself is a .udeb the installer downloads, and .udeb files are unreachable
    # from these machines: what runs here is everything before that download. The installer's own
    # shell (its main menu's "Execute a shell") shows the boot parameters in its preseed log as
    # debconf answers, and its fetch-url base64 method turning the key's URL back into the key.
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tester@host", "-f", str(tmp_path / "id")], check=True
    )
    public = (tmp_path / "id.pub").read_bytes()
    url = b"base64://" + base64.b64encode(public)
    machine, _, mirror = _guest_on_the_mirror(vm, tmp_path, httpserver, "10.0.2.15")
    machine.run(f"echo '{public.decode().strip()}' > /root/id.pub")
    machine.send(
        f"kexec-bin netboot debian --mirror {mirror} --release bookworm --ssh-key /root/id.pub "
        "--append priority=low --yes --exec-after 1"
    )
    plan = _plan(machine)
    assert "ssh: network-console with 1 authorized key from /root/id.pub" in plan
    machine.expect(INSTALLER_MAIN_MENU, INSTALLER_SECONDS)
    time.sleep(5)  # let the menu settle before typing into it
    machine.keys("\x1b[B" * 9 + "\r")  # "Execute a shell" is the tenth item, the first is highlighted
    machine.expect("Interactive shell", INSTALLER_SECONDS)
    machine.keys("\r")
    machine.expect(r"~ # ", INSTALLER_SECONDS)
    # Short lines only: the shell drops what is typed past its 80 columns. The key's lines are longer
    # than that too, so they are compared by their sha256.
    _in_shell(machine, "cp /var/lib/preseed/log /l")
    assert re.search(r"d-i anna/choose_modules \S+ network-console", _in_shell(machine, "grep anna/ /l"))
    assert re.search(r"d-i network-console/password-disabled \S+ true", _in_shell(machine, "grep password-dis /l"))
    _in_shell(machine, "sed -n 's|.*_keys_url [a-z]* ||p' /l >/u")
    assert hashlib.sha256(url + b"\n").hexdigest() in _in_shell(machine, "sha256sum /u")
    _in_shell(machine, ". /usr/lib/fetch-url/base64")
    _in_shell(machine, 'protocol_fetch "$(cat /u)" /k')
    assert hashlib.sha256(public).hexdigest() in _in_shell(machine, "sha256sum /k")


def _in_shell(machine: Machine, command: str) -> str:
    """Run `command` in the installer's shell; its output. The installer's screen session redraws the
    console with cursor moves rather than line breaks, so the status marker does not wait for one."""
    machine.send(f'{command}; echo "=RC=$?="')
    output, status = machine.expect(r"(?s)(.*?)=RC=(\d+)=", INSTALLER_SECONDS).groups()
    assert status == "0", f"`{command}` exited with status {status}:\n{output}"
    return output
