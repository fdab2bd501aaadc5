"""This machine's network on its default routes (IPv4 and IPv6), read so the installer can keep it.

The default routes come from the kernel's tables under the root (proc/net/route, proc/net/ipv6_route),
the DNS servers and search domains from resolv.conf there, read through `read.Tree` (capped, never
waiting on a FIFO). The interface's addresses, link-layer address and kind (a NIC, or a bridge or
bond over NICs) come from the running kernel through `ip -j -d addr` (iproute2's JSON), which also
says which IPv6 addresses are static and which the kernel made itself (SLAAC: "dynamic").
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
from dataclasses import dataclass

from .read import Tree

_RTF_UP, _RTF_GATEWAY = 0x1, 0x2
# The most rows of a routing table or resolv.conf read: far more than a real host has.
_TABLE_BYTES = 1 << 20
# systemd-resolved's stub listens on the local machine only; its real servers are listed here.
_RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"
# `ip` answers at once; a wedged one must not hold the plan.
_IP_SECONDS = 10
_IP_OUTPUT_BYTES = 4 << 20


@dataclass(frozen=True)
class Address:
    """An address with its prefix length, and whether the kernel made it itself (SLAAC, DHCP leases)."""

    address: str
    prefix: int
    dynamic: bool = False

    def __str__(self) -> str:
        return f"{self.address}/{self.prefix}"

    def holds(self, other: str) -> bool:
        """Whether `other` lies in this address's subnet."""
        return ipaddress.ip_address(other) in ipaddress.ip_interface(str(self)).network


@dataclass(frozen=True)
class Route:
    """A default route: the interface it leaves by and its gateway."""

    interface: str
    gateway: str


@dataclass(frozen=True)
class Link:
    """An interface as the installer would find it: its link-layer address, kind and the NICs under it."""

    name: str
    mac: str
    """Its Ethernet address, "" when it has none (a tunnel, a point-to-point link)."""
    kind: str
    """ "" for a NIC (or a virtual NIC the installer sees the same way), else "bridge", "bond", "vlan", …"""
    ports: tuple[tuple[str, str], ...] = ()
    """A bridge's or bond's member interfaces that are NICs: (name, permanent Ethernet address)."""


@dataclass(frozen=True)
class Network:
    """What the default routes use: the interface(s), addresses, gateways, DNS and names."""

    link: Link
    ipv4: Address | None
    gateway4: str
    ipv6: tuple[Address, ...]
    """The global IPv6 addresses of the IPv6 default route's interface (static ones first)."""
    gateway6: str
    nameservers: tuple[str, ...]
    search: tuple[str, ...]
    hostname: str
    """This machine's short name; empty when it has none ("(none)", "localhost")."""
    domain: str


def default_route(root: str = "/") -> Network | None:
    """The network of this machine's default routes, or None when it has neither an IPv4 nor an IPv6 one.

    With both, the IPv4 route's interface is the one described; the IPv6 route counts when it
    leaves by the same interface.
    """
    tree = Tree(root)
    route4, route6 = _default_route4(tree), _default_route6(tree)
    route = route4 or route6
    if route is None:
        return None
    links = _links()
    link = links.get(route.interface, {})
    addresses = link.get("addr_info", [])
    ipv4 = _source_address(addresses, route4.gateway) if route4 else None
    same_link = route6 is not None and route6.interface == route.interface
    ipv6 = _global_ipv6(addresses) if same_link else ()
    nameservers, search = _resolver(tree)
    full = socket.gethostname()
    hostname, _, host_domain = full.partition(".")
    return Network(
        link=_link(route.interface, link, links),
        ipv4=ipv4,
        gateway4=route4.gateway if route4 and ipv4 else "",
        ipv6=ipv6,
        gateway6=route6.gateway if route6 and same_link else "",
        nameservers=nameservers,
        search=search,
        hostname=hostname if _is_label(hostname) else "",
        domain=host_domain if _is_domain(host_domain) else (search[0] if search else ""),
    )


def _default_route4(tree: Tree) -> Route | None:
    """The IPv4 default route with the lowest metric in proc/net/route (rows that do not parse are skipped)."""
    found: list[tuple[int, Route]] = []
    for row in _table(tree, "/proc/net/route")[1:]:
        try:
            interface, destination, gateway, flags, metric, mask = row[0], row[1], row[2], row[3], row[6], row[7]
            if int(destination, 16) or int(mask, 16) or int(flags, 16) & (_RTF_UP | _RTF_GATEWAY) != 3:
                continue
            address = socket.inet_ntoa(int(gateway, 16).to_bytes(4, "little"))
            found.append((int(metric), Route(interface, address)))
        except (IndexError, ValueError, OverflowError):
            continue
    return min(found, key=lambda pair: pair[0])[1] if found else None


def _default_route6(tree: Tree) -> Route | None:
    """The IPv6 default route with the lowest metric in proc/net/ipv6_route (the kernel's own
    unreachable ::/0 on lo is no route out)."""
    found: list[tuple[int, Route]] = []
    for row in _table(tree, "/proc/net/ipv6_route"):
        try:
            destination, length, gateway, metric, flags, interface = row[0], row[1], row[4], row[5], row[8], row[9]
            if int(destination, 16) or int(length, 16) or int(flags, 16) & (_RTF_UP | _RTF_GATEWAY) != 3:
                continue
            if interface == "lo":
                continue
            address = str(ipaddress.IPv6Address(bytes.fromhex(gateway)))
            found.append((int(metric, 16), Route(interface, address)))
        except (IndexError, ValueError):
            continue
    return min(found, key=lambda pair: pair[0])[1] if found else None


def _table(tree: Tree, path: str) -> list[list[str]]:
    data = tree.read_capped(path, _TABLE_BYTES) or b""
    return [line.split() for line in data.decode("ascii", "replace").splitlines()]


def _links() -> dict[str, dict]:
    """Every interface of the running kernel as `ip -j -d addr` describes it, by name; {} without `ip`."""
    try:
        done = subprocess.run(["ip", "-j", "-d", "addr", "show"], capture_output=True, timeout=_IP_SECONDS, check=False)
        entries = json.loads(done.stdout[:_IP_OUTPUT_BYTES]) if done.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}
    return {entry["ifname"]: entry for entry in entries if isinstance(entry, dict) and "ifname" in entry}


def _source_address(addresses: list[dict], gateway: str) -> Address | None:
    """The IPv4 address the kernel sends from towards `gateway`: the one whose subnet holds it, else the
    primary one (a /32 with an on-link gateway outside it)."""
    ipv4 = [
        Address(entry["local"], int(entry["prefixlen"]), bool(entry.get("dynamic")))
        for entry in addresses
        if entry.get("family") == "inet" and entry.get("scope") == "global" and "local" in entry
    ]
    return next((address for address in ipv4 if address.holds(gateway)), ipv4[0] if ipv4 else None)


def _global_ipv6(addresses: list[dict]) -> tuple[Address, ...]:
    found = [
        Address(entry["local"], int(entry["prefixlen"]), bool(entry.get("dynamic")))
        for entry in addresses
        if entry.get("family") == "inet6"
        and entry.get("scope") == "global"
        and "local" in entry
        and not entry.get("tentative")
        and not entry.get("deprecated")
        and not entry.get("temporary")
    ]
    return tuple(sorted(found, key=lambda address: address.dynamic))


def _link(name: str, entry: dict, links: dict[str, dict]) -> Link:
    kind = _kind(entry)
    if kind in ("bridge", "bond", "team"):
        # NICs first: a bridge that also holds containers' veth ends is taken by its NIC.
        members = sorted((_kind(links[port], raw=True), port) for port in links if links[port].get("master") == name)
        ports = tuple((port, _permanent_mac(links[port])) for raw, port in members if raw in ("", "veth"))
        return Link(name, _permanent_mac(entry), kind, ports)
    return Link(name, _permanent_mac(entry), kind)


def _kind(entry: dict, raw: bool = False) -> str:
    """What sort of interface `entry` is: "" for a NIC; a veth counts as one (to a network namespace it
    is the NIC), unless `raw`."""
    kind = str(entry.get("linkinfo", {}).get("info_kind", ""))
    return kind if raw or kind != "veth" else ""


def _permanent_mac(entry: dict) -> str:
    """The NIC's own Ethernet address (a bond's port shows the bond's until it leaves it)."""
    if entry.get("link_type") != "ether":
        return ""
    return str(entry.get("permaddr") or entry.get("address") or "")


def _resolver(tree: Tree) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The name servers (IPv4 and IPv6) and search domains, skipping a local stub resolver."""
    servers: list[str] = []
    search: list[str] = []
    for name in ("/etc/resolv.conf", _RESOLVED_UPSTREAM):
        data = tree.read_capped(name, _TABLE_BYTES)
        lines = [line.split() for line in (data or b"").decode("utf-8", "replace").splitlines()]
        servers = [words[1] for words in lines if len(words) > 1 and words[0] == "nameserver" and _is_remote(words[1])]
        # The last search or domain line wins, as in glibc's resolver.
        for words in lines:
            if words and words[0] in ("search", "domain"):
                search = [domain.rstrip(".") for domain in words[1:] if _is_domain(domain.rstrip("."))]
        if servers:
            break
    return tuple(servers), tuple(search)


def _is_remote(text: str) -> bool:
    """Whether `text` is a name server address another machine can use (not 127.0.0.53, not ::1)."""
    try:
        return not ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def _is_label(name: str) -> bool:
    return name != "localhost" and bool(re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", name))


def _is_domain(name: str) -> bool:
    return 0 < len(name) <= 253 and all(_is_label(label) for label in name.split("."))
