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
import threading

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from kexec_build.errors import GuestError
from kexec_build.testbed import netboot_mirror
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
# The installer's main menu at priority=low, top to bottom, as it draws it on the serial console.
MAIN_MENU = (
    "Choose language",
    "Access software for a blind person using a braille display",
    "Configure the keyboard",
    "Detect network hardware",
    "Configure the network",
    "Choose a mirror of the Debian archive",
    "Download installer components",
    "Change debconf priority",
    "Save debug logs",
    "Execute a shell",
    "Abort the installation",
)
# How long one arrow key may take to move the menu's highlight (newt redraws the two items) under TCG.
MENU_STEP_SECONDS = 30


def _guest_on_the_mirror(
    vm,
    tmp_path,
    httpserver,
    address: str,
    files: dict[str, bytes] | None = None,
    nic_options: tuple[str, ...] = USER_NIC,
) -> tuple[Machine, str, str]:
    """The pip-installed guest with a static `address`, and a mirror serving `files` (default: bookworm's
    images); returns the guest, its NIC's name and the mirror's URL."""
    httpserver.no_handler_status_code = 404  # a file the mirror lacks, as a real mirror answers
    for path, data in (files or netboot_mirror.files("bookworm", "amd64")).items():
        httpserver.expect_request(f"/debian/{path}").respond_with_data(data, content_type="application/octet-stream")
    machine, wheel = start_with_wheel(vm.start, tmp_path, qemu_options=nic_options)
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
    # The host's keyring, and the newer one the wheel carries (a key either has counts).
    assert "good signature by" in plan and "(keyring /usr/share/keyrings/debian-archive-keyring.gpg, " in plan
    assert f"network: static 10.0.2.15/24 via {USER_NET_HOST} on {nic}, DNS {USER_NET_DNS}" in plan
    assert "command line: console=ttyS0 netcfg/choose_interface=" in plan  # by its MAC
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
    asked = threading.Event()

    def release_not_found(request: Request) -> Response:
        asked.set()
        return Response("", status=404)

    httpserver.expect_request("/debian/dists/bookworm/Release").respond_with_handler(release_not_found)
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
    machine.expect(f"Detecting link on {nic}", INSTALLER_SECONDS)  # the interface it was told to use, by its MAC
    assert asked.wait(INSTALLER_SECONDS), f"the installer never asked the mirror for Release:\n{machine.tail()}"
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
    _choose(machine, "Execute a shell")
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


def _choose(machine: Machine, item: str) -> None:
    """Move the main menu's highlight from its first item down to `item`, then press Enter.

    Each step waits for what the screen shows: the installer redrawing the next item. A key typed before
    the menu reads the keyboard is lost, so a step that brings no redraw is typed again."""
    machine.expect(re.escape(MAIN_MENU[-1]), INSTALLER_SECONDS)  # the whole menu is on the screen
    for following in MAIN_MENU[1 : MAIN_MENU.index(item) + 1]:
        for _ in range(3):
            machine.keys("\x1b[B")
            try:
                machine.expect(re.escape(following), MENU_STEP_SECONDS)
                break
            except GuestError:
                continue
        else:
            machine.fail(f"the installer's menu did not move to {following!r}")
    machine.keys("\r")


def _in_shell(machine: Machine, command: str) -> str:
    """Run `command` in the installer's shell; its output. The installer's screen session redraws the
    console with cursor moves rather than line breaks, so the status marker does not wait for one."""
    machine.send(f'{command}; echo "=RC=$?="')
    output, status = machine.expect(r"(?s)(.*?)=RC=(\d+)=", INSTALLER_SECONDS).groups()
    assert status == "0", f"`{command}` exited with status {status}:\n{output}"
    return output


# QEMU's user network over IPv6 on a documentation prefix (its default, fec0::/64, is site-local, a
# scope nobody deploys): the host and its DNS relay.
USER_NET6_HOST, USER_NET6_DNS = "2001:db8:77::2", "2001:db8:77::3"
USER_NIC6 = ("-nic", "user,model=virtio-net-pci,ipv6-net=2001:db8:77::/64")
# Run by the installer right after it fetched the preseed over the network it was given: what that
# network is, printed on its serial console from inside the installer.
SHOW_NETWORK = (
    "d-i preseed/early_command string ip addr show > /dev/console; ip route show > /dev/console; "
    "ip -6 route show > /dev/console; echo =KEPT-NETWORK-SHOWN= > /dev/console\n"
)


def _installer_network(machine: Machine, requests: list) -> str:
    """What the installer printed of its network once it fetched the preseed over it (`requests`: the
    serving HTTPServer's log)."""
    machine.expect("=KEPT-NETWORK-SHOWN=", INSTALLER_SECONDS)
    assert any(request.path == "/show.cfg" for request, _ in requests)
    installer = machine.tail(100_000).split("booting: no systemd", 1)[1]
    assert "DHCP" not in installer  # netcfg took the static answers: no "Configuring the network with DHCP"
    return installer


def test_the_installer_comes_up_on_a_kept_ipv6_only_address(vm, tmp_path, httpserver):
    # The guest keeps an IPv4 address only to reach the loopback mirror on its own subnet: it has no
    # IPv4 default route, so what --network keep finds is an IPv6-only default route.
    server = HTTPServer(host="::1")  # QEMU's user network takes its IPv6 host address to the host's ::1
    server.expect_request("/show.cfg").respond_with_data(SHOW_NETWORK)
    server.start()
    try:
        machine, nic, mirror = _guest_on_the_mirror(vm, tmp_path, httpserver, "10.0.2.15", nic_options=USER_NIC6)
        machine.run(
            f"echo 0 > /proc/sys/net/ipv6/conf/{nic}/accept_ra && ip -6 route flush proto ra && "
            f"ip -6 addr flush dev {nic} scope global && ip route del default && "
            f"ip -6 addr add 2001:db8:77::77/64 dev {nic} nodad && "
            f"ip -6 route replace default via {USER_NET6_HOST} dev {nic} && "
            f"echo 'nameserver {USER_NET6_DNS}' > /etc/resolv.conf"
        )
        machine.send(
            f"kexec-bin netboot debian --mirror {mirror} --release bookworm --network keep "
            f"--preseed http://[{USER_NET6_HOST}]:{server.port}/show.cfg "
            "--append 'auto=true priority=critical' --yes --exec-after 1"
        )
        plan = _plan(machine)
        assert f"network: static 2001:db8:77::77/64 via {USER_NET6_HOST} on {nic}" in plan
        assert (
            "netcfg/disable_autoconfig=true netcfg/get_ipaddress=2001:db8:77::77 "
            "netcfg/get_netmask=ffff:ffff:ffff:ffff:: "
            f"netcfg/get_gateway={USER_NET6_HOST} netcfg/get_nameservers={USER_NET6_DNS}"
        ) in plan
        assert "preseed/url/checksum=" in plan  # plain http: pinned by the sum the installer checks
        installer = _installer_network(machine, server.log)
        assert "inet6 2001:db8:77::77/64 scope global" in installer
        assert f"default via {USER_NET6_HOST} dev " in installer
        assert "inet 10.0.2." not in installer  # IPv6 only: no IPv4 address in the installer
    finally:
        server.stop()


def test_the_installer_comes_up_on_a_kept_slash_32_with_an_on_link_gateway(vm, tmp_path, httpserver):
    httpserver.expect_request("/show.cfg").respond_with_data(SHOW_NETWORK)
    machine, nic, mirror = _guest_on_the_mirror(vm, tmp_path, httpserver, "10.0.2.15")
    machine.run(
        f"ip addr flush dev {nic} && ip addr add 10.0.2.77/32 dev {nic} && "
        f"ip route add {USER_NET_HOST} dev {nic} && ip route add default via {USER_NET_HOST}"
    )
    machine.send(
        f"kexec-bin netboot debian --mirror {mirror} --release bookworm --network keep "
        f"--preseed http://{USER_NET_HOST}:{httpserver.port}/show.cfg "
        "--append 'auto=true priority=critical' --yes --exec-after 1"
    )
    plan = _plan(machine)
    assert f"network: static 10.0.2.77/32 via {USER_NET_HOST} on {nic}" in plan
    assert (
        f"netcfg/get_ipaddress=10.0.2.77 netcfg/get_netmask=255.255.255.255 netcfg/get_gateway={USER_NET_HOST}"
    ) in plan
    installer = _installer_network(machine, httpserver.log)
    # netcfg 1.187 (bookworm) takes a gateway outside a /32 and routes it on the link; its 1.144 source did not.
    assert "inet 10.0.2.77/32 " in installer
    assert f"default via {USER_NET_HOST} dev {nic} onlink" in installer
