"""This machine's IPv4 configuration on its default route, read so the next system can keep it.

The route comes from /proc/net/route, the address and prefix from the interface itself (the
SIOCGIFADDR/SIOCGIFNETMASK ioctls: no `ip` program needed), the DNS servers from resolv.conf.
"""

from __future__ import annotations

import os
import re
import socket
import struct
from dataclasses import dataclass

_SIOCGIFADDR, _SIOCGIFNETMASK = 0x8915, 0x891B
_RTF_UP, _RTF_GATEWAY = 0x1, 0x2
# systemd-resolved's stub listens on the local machine only; its real servers are listed here.
_RESOLVED_UPSTREAM = "run/systemd/resolve/resolv.conf"


@dataclass(frozen=True)
class Ipv4:
    """The default route's interface with its address, prefix, gateway, DNS servers and names."""

    interface: str
    address: str
    prefix: int
    gateway: str
    nameservers: tuple[str, ...]
    hostname: str
    """This machine's short name; empty when it has none ("(none)", "localhost")."""
    domain: str

    @property
    def netmask(self) -> str:
        return socket.inet_ntoa(struct.pack(">I", (0xFFFFFFFF << (32 - self.prefix)) & 0xFFFFFFFF))


def default_route(root: str = "/") -> Ipv4 | None:
    """The IPv4 configuration of the default route's interface, or None without a default route."""
    route = _default_gateway(os.path.join(root, "proc/net/route"))
    if route is None:
        return None
    interface, gateway = route
    address, netmask = _interface_address(interface)
    nameservers, domain = _resolver(root)
    hostname = socket.gethostname().split(".")[0]
    return Ipv4(
        interface=interface,
        address=address,
        prefix=bin(netmask).count("1"),
        gateway=gateway,
        nameservers=nameservers,
        hostname=hostname if _is_hostname(hostname) else "",
        domain=domain,
    )


def _default_gateway(path: str) -> tuple[str, str] | None:
    try:
        with open(path, encoding="ascii") as file:
            rows = [line.split() for line in file.readlines()[1:]]
    except OSError:
        return None
    for row in rows:
        interface, destination, gateway, flags, mask = row[0], row[1], row[2], int(row[3], 16), row[7]
        if destination == mask == "00000000" and flags & _RTF_UP and flags & _RTF_GATEWAY:
            return interface, socket.inet_ntoa(struct.pack("<I", int(gateway, 16)))
    return None


def _interface_address(interface: str) -> tuple[str, int]:
    import fcntl

    request = struct.pack("256s", interface.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        address = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)[20:24]
        netmask = fcntl.ioctl(probe.fileno(), _SIOCGIFNETMASK, request)[20:24]
    return socket.inet_ntoa(address), struct.unpack(">I", netmask)[0]


def _resolver(root: str) -> tuple[tuple[str, ...], str]:
    """The IPv4 name servers and the first search domain, skipping a local stub resolver."""
    servers: list[str] = []
    domain = ""
    for name in ("etc/resolv.conf", _RESOLVED_UPSTREAM):
        try:
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as file:
                lines = [line.split() for line in file]
        except OSError:
            continue
        servers = [
            words[1]
            for words in lines
            if len(words) > 1 and words[0] == "nameserver" and _is_ipv4(words[1]) and not words[1].startswith("127.")
        ]
        domain = domain or next(
            (words[1] for words in lines if len(words) > 1 and words[0] in ("search", "domain")), ""
        )
        if servers:
            break
    return tuple(servers), domain


def _is_hostname(name: str) -> bool:
    return name != "localhost" and bool(re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", name))


def _is_ipv4(text: str) -> bool:
    try:
        socket.inet_aton(text)
    except OSError:
        return False
    return text.count(".") == 3
