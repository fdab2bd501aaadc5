"""`--network keep` reads the networks people have, set up for real in a network namespace.

Each test makes a namespace whose one interface is a veth whose other end sits in a second,
empty namespace (no dummy links here; nothing reaches the host's network), gives it addresses
and routes from the documentation prefixes (2001:db8::/32, 203.0.113.0/24, 198.51.100.0/24)
without duplicate address detection, and runs the installer-answer code inside it with its own
host name (a UTS namespace) and resolv.conf (`ip netns exec` mounts /etc/netns/NAME/resolv.conf).
No packet is sent on purpose; the links stay between the two namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"),
    reason="needs root, iproute2 and util-linux's unshare to make network namespaces",
)

SOURCE = str(Path(__file__).resolve().parents[2] / "src")
# Runs in the namespace: the answers for a mode, as JSON.
ANSWER = (
    "import json, sys\n"
    "from kexec_bin import answers\n"
    "from kexec_bin.errors import KexecBinError\n"
    "try:\n"
    "    found = answers.network_parameters(sys.argv[1])\n"
    "    print(json.dumps([found.parameters, found.decisions, found.warnings]))\n"
    "except KexecBinError as error:\n"
    "    print(json.dumps(str(error)))\n"
)


@dataclass
class Namespace:
    """A network namespace with the veth `nic` whose peer lives in a second, empty namespace."""

    name: str
    nic: str = "nic0"

    def ip(self, *arguments: str) -> str:
        return _run("ip", "-n", self.name, *arguments)

    @property
    def mac(self) -> str:
        return json.loads(self.ip("-j", "link", "show", self.nic))[0]["address"]

    def answers(self, mode: str = "keep", hostname: str = "web1.example.org") -> tuple[list[str], list[str], list[str]]:
        """The installer answers for `mode` read inside the namespace: (parameters, decisions, warnings),
        or a refusal's message."""
        script = f'hostname {hostname} && exec {sys.executable} -c "$0" "$1"'
        output = _run(
            "ip", "netns", "exec", self.name, "unshare", "--uts", "sh", "-c", script, ANSWER, mode,
            env={**os.environ, "PYTHONPATH": SOURCE},
        )  # fmt: skip
        return json.loads(output)


def _run(*command: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
    return done.stdout


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    name = f"kb-{uuid.uuid4().hex[:8]}"
    peer = f"{name}-peer"
    resolv = Path("/etc/netns") / name
    _run("ip", "netns", "add", name)
    _run("ip", "netns", "add", peer)
    try:
        _run("ip", "link", "add", "nic0", "netns", name, "type", "veth", "peer", "name", "peer0", "netns", peer)
        _run("ip", "-n", peer, "link", "set", "peer0", "up")
        # No router solicitations or SLAAC of its own: the tests give every address and route.
        _run("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.nic0.accept_ra=0")
        _run("ip", "-n", name, "link", "set", "nic0", "up")
        resolv.mkdir(parents=True)
        (resolv / "resolv.conf").write_text(
            "nameserver 127.0.0.53\nnameserver 2001:db8:53::53\nnameserver 203.0.113.53\n"
            "search example.org lab.example.org\n"
        )
        yield Namespace(name)
    finally:
        shutil.rmtree(resolv, ignore_errors=True)
        subprocess.run(["ip", "netns", "del", name], check=False)
        subprocess.run(["ip", "netns", "del", peer], check=False)


def test_an_ipv6_only_static_setup_is_kept(namespace):
    namespace.ip("-6", "addr", "add", "2001:db8:1::5/64", "dev", "nic0", "nodad")
    namespace.ip("-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "nic0")
    parameters, decisions, warnings = namespace.answers()
    assert parameters == [
        f"netcfg/choose_interface={namespace.mac}",
        "netcfg/disable_autoconfig=true",
        "netcfg/get_ipaddress=2001:db8:1::5",
        "netcfg/get_netmask=ffff:ffff:ffff:ffff::",
        "netcfg/get_gateway=2001:db8:1::1",
        'netcfg/get_nameservers="2001:db8:53::53 203.0.113.53"',
        "netcfg/confirm_static=true",
        "netcfg/get_hostname=web1",
        "netcfg/get_domain=example.org",
    ]
    assert decisions[0].startswith("network: static 2001:db8:1::5/64 via 2001:db8:1::1 on nic0, DNS ")
    assert warnings == ["network: netcfg takes one search domain (example.org); lab.example.org are left out"]


def test_an_ipv6_link_local_gateway_is_named_as_what_netcfg_cannot_take(namespace):
    namespace.ip("-6", "addr", "add", "2001:db8:1::5/64", "dev", "nic0", "nodad")
    namespace.ip("-6", "route", "add", "default", "via", "fe80::1", "dev", "nic0")
    parameters, _, warnings = namespace.answers()
    assert "netcfg/get_ipaddress=2001:db8:1::5" in parameters and "netcfg/get_gateway=none" in parameters
    assert any("the IPv6 gateway fe80::1 is link-local" in warning for warning in warnings)


def test_a_slash_32_with_an_on_link_gateway_is_kept_as_it_is(namespace):
    # Hetzner and OVH style: the gateway is outside the /32, reached on the link.
    namespace.ip("addr", "add", "203.0.113.7/32", "dev", "nic0")
    namespace.ip("route", "add", "198.51.100.1", "dev", "nic0")
    namespace.ip("route", "add", "default", "via", "198.51.100.1", "dev", "nic0")
    parameters, decisions, warnings = namespace.answers()
    assert parameters[1:5] == [
        "netcfg/disable_autoconfig=true",
        "netcfg/get_ipaddress=203.0.113.7",
        "netcfg/get_netmask=255.255.255.255",
        "netcfg/get_gateway=198.51.100.1",
    ]
    assert decisions[0].startswith("network: static 203.0.113.7/32 via 198.51.100.1 on nic0")
    assert (
        "network: 203.0.113.7/32 with the on-link gateway 198.51.100.1 outside it (as on /32 hosting networks): "
        "the installer's netcfg (bookworm's and later) routes `default via 198.51.100.1 dev … onlink`"
    ) in decisions
    assert not [line for line in warnings if "gateway" in line]


def test_a_gateway_outside_a_wider_subnet_gets_the_smallest_subnet_holding_both(namespace):
    namespace.ip("addr", "add", "203.0.113.7/30", "dev", "nic0")
    namespace.ip("route", "add", "203.0.113.1", "dev", "nic0")
    namespace.ip("route", "add", "default", "via", "203.0.113.1", "dev", "nic0")
    parameters, _, warnings = namespace.answers()
    assert parameters[2:5] == [
        "netcfg/get_ipaddress=203.0.113.7",
        "netcfg/get_netmask=255.255.255.248",  # .0/29 holds .7 and .1
        "netcfg/get_gateway=203.0.113.1",
    ]
    assert any("so the installer gets 203.0.113.7/29, the smallest subnet holding both" in line for line in warnings)


def test_dual_stack_with_two_ipv4_subnets_keeps_the_address_the_default_route_leaves_from(namespace):
    # The primary address is in another subnet than the gateway (issue 17, finding 5).
    namespace.ip("addr", "add", "198.51.100.3/24", "dev", "nic0")
    namespace.ip("addr", "add", "203.0.113.5/24", "dev", "nic0")
    namespace.ip("route", "add", "default", "via", "203.0.113.1")
    namespace.ip("-6", "addr", "add", "2001:db8:1::5/64", "dev", "nic0", "nodad")
    namespace.ip("-6", "route", "add", "default", "via", "2001:db8:1::1")
    parameters, decisions, warnings = namespace.answers("auto")
    assert parameters[2:5] == [
        "netcfg/get_ipaddress=203.0.113.5",
        "netcfg/get_netmask=255.255.255.0",
        "netcfg/get_gateway=203.0.113.1",
    ]
    assert decisions[0].startswith("network: static 203.0.113.5/24 via 203.0.113.1 on nic0")
    assert (
        "network: IPv6 2001:db8:1::5/64 via 2001:db8:1::1 is not carried: netcfg configures one static address "
        "of one family, and this one is IPv4; the installer still takes IPv6 addresses by SLAAC when a router "
        "advertises them"
    ) in warnings


def test_a_bridge_is_replaced_by_the_nic_under_it(namespace):
    namespace.ip("link", "add", "br0", "type", "bridge")
    namespace.ip("link", "set", "nic0", "master", "br0")
    namespace.ip("link", "set", "br0", "up")
    namespace.ip("addr", "add", "203.0.113.5/24", "dev", "br0")
    namespace.ip("route", "add", "default", "via", "203.0.113.1")
    parameters, _, warnings = namespace.answers()
    assert parameters[0] == f"netcfg/choose_interface={namespace.mac}"  # nic0's own MAC, not br0's
    assert (
        "network: br0 is a bridge over nic0; the installer has no bridge, so it configures nic0 itself "
        "with br0's address"
    ) in warnings


def test_a_default_route_on_an_interface_without_ipv4_falls_back_to_dhcp_under_auto(namespace):
    namespace.ip("route", "add", "203.0.113.1", "dev", "nic0")
    namespace.ip("route", "add", "default", "via", "203.0.113.1", "dev", "nic0")
    parameters, decisions, _ = namespace.answers("auto")
    assert parameters == []
    assert decisions == [
        "network: the default route's interface nic0 has no IPv4 address and no static IPv6 one, "
        "so the installer configures itself (DHCP, SLAAC)"
    ]
    assert namespace.answers("keep") == (
        "--network keep: the default route's interface nic0 has no IPv4 address and no static IPv6 one: "
        "nothing to keep; use --network dhcp"
    )


def test_the_host_name_and_domain_are_this_hosts(namespace):
    namespace.ip("addr", "add", "203.0.113.5/24", "dev", "nic0")
    namespace.ip("route", "add", "default", "via", "203.0.113.1")
    parameters, _, _ = namespace.answers(hostname="db7.corp.example.net")
    assert parameters[-2:] == ["netcfg/get_hostname=db7", "netcfg/get_domain=corp.example.net"]
    parameters, _, _ = namespace.answers(hostname="plain")  # no domain in the name: resolv.conf's search
    assert parameters[-2:] == ["netcfg/get_hostname=plain", "netcfg/get_domain=example.org"]


def test_a_quote_in_an_interface_name_chosen_by_name_is_refused(namespace):
    # A tun device has no MAC, so netcfg would have to be told its name, and this one holds a quote.
    tun = 'tun"0'
    namespace.ip("tuntap", "add", "dev", tun, "mode", "tun")
    namespace.ip("link", "set", tun, "up")
    namespace.ip("addr", "add", "203.0.113.5/24", "dev", tun)
    namespace.ip("route", "add", "default", "via", "203.0.113.1", "dev", tun)
    refusal = namespace.answers("auto")
    assert refusal == (
        "--network auto: the interface name 'tun\"0': holds a space, a quote, a backslash or a character "
        "outside printable ASCII, which would change the installer's kernel command line; give a value without them, "
        "or use --network dhcp"
    )


def test_ipv6_by_slaac_only_is_left_to_the_installers_own_autoconfiguration(namespace):
    # An address with lifetimes is what SLAAC makes ("dynamic"): nothing static to keep.
    namespace.ip(
        "-6", "addr", "add", "2001:db8:1::5054/64", "dev", "nic0", "nodad", "valid_lft", "3600", "preferred_lft", "1800"
    )
    namespace.ip("-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "nic0")
    parameters, decisions, _ = namespace.answers("keep")
    assert parameters == []
    assert decisions == [
        "network: the default route's interface nic0 has no IPv4 address and no static IPv6 one "
        "(IPv6 2001:db8:1::5054/64 is SLAAC's), so the installer configures itself (DHCP, SLAAC)"
    ]
