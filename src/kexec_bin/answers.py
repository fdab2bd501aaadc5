"""The Debian installer's boot-parameter answers: netcfg's network, a preseed, network-console's keys.

Every value here ends up on the installer's kernel command line, where a space starts a new
parameter and a double quote groups words: one function, `parameter`, builds each `name=value`
and refuses a value that could become a parameter of its own (`init=/bin/sh`).

The netcfg answers are the questions netcfg really reads, from its source (debian-installer's
netcfg, static.c and netcfg-common.c; read at 1.144 and the same in the later copies found):
- netcfg/disable_autoconfig=true skips DHCP and netcfg's IPv6 autoconfiguration (netcfg.c).
- netcfg/choose_interface takes an interface name or a link-layer address aa:bb:cc:dd:ee:ff,
  matched against every interface (netcfg-common.c, parse_bootif and find_bootif_iface): a MAC
  survives the installer naming the NIC differently from the host.
- netcfg/get_ipaddress takes one IPv4 or one IPv6 address (netcfg_parse_cidr_address), so a
  static setup is one address of one family; netcfg/get_netmask a mask of that family (inet_pton).
- netcfg/get_gateway must lie inside that address's subnet (netcfg_gateway_reachable), else the
  installer stops at "Unreachable gateway"; "none" means no gateway. Except on an IPv4 /32: the
  bookworm installer's netcfg (1.187+deb12u1, newer than the source read; its binary holds
  " dev %s onlink") takes 255.255.255.255 with a gateway outside and adds `default via GW dev NIC
  onlink`, as tests/vm/test_netboot.py shows from inside the installer.
- netcfg/get_pointopoint is asked only for plip, slip, ctc, escon and iucv interfaces (static.c,
  GET_IPADDRESS), never for Ethernet.
- netcfg/get_nameservers takes up to 4 (NETCFG_NAMESERVERS_MAX) IPv4 or IPv6 addresses, split
  on spaces (netcfg_nameservers_to_array).
- netcfg/get_domain is one domain, written as resolv.conf's one `search` entry (netcfg_write_resolv).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field

from . import cpio
from .errors import PlanError
from .network import Address, Network, default_route
from .plan.model import PlannedFile, parameter
from .read import read_regular

# The key types OpenSSH's sshd accepts in authorized_keys (DSA is off by default since 7.0).
SSH_KEY_TYPES = re.compile(
    r"ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com"
)
# The longest --ssh-key FILE may get on the kernel command line, encoded: half of x86's and arm64's
# 2048-byte limit, leaving the rest for the console, network and --append parameters.
MAX_KEYS_PARAMETER = 1024
# The most a preseed or a key file may hold: real ones are a few KiB.
MAX_ANSWER_FILE = 1 << 20
NAMESERVERS_MAX = 4  # netcfg.h, NETCFG_NAMESERVERS_MAX


@dataclass
class Answers:
    """Kernel parameters for the installer, with the plan's lines saying why and what is not carried."""

    parameters: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def network_parameters(mode: str, root: str = "/") -> Answers:
    """netcfg's answers for `--network` (auto, dhcp, keep)."""
    if mode == "dhcp":
        return Answers(decisions=["network: the installer asks DHCP (--network dhcp)"])
    current = default_route(root)
    keep = mode == "keep"
    if current is None:
        if keep:
            raise PlanError(
                "--network keep: this machine has no default route to keep (neither IPv4 in /proc/net/route "
                "nor IPv6 in /proc/net/ipv6_route); use --network dhcp"
            )
        return Answers(decisions=["network: no default route here, so the installer asks DHCP"])
    static6 = [address for address in current.ipv6 if not address.dynamic]
    if current.ipv4 is None and not static6:
        why = f"the default route's interface {current.link.name} has no IPv4 address and no static IPv6 one" + (
            f" (IPv6 {current.ipv6[0]} is SLAAC's)" if current.ipv6 else ""
        )
        if keep and not current.ipv6:
            raise PlanError(f"--network keep: {why}: nothing to keep; use --network dhcp")
        return Answers(decisions=[f"network: {why}, so the installer configures itself (DHCP, SLAAC)"])
    answers = Answers()
    address, gateway = (current.ipv4, current.gateway4) if current.ipv4 else (static6[0], current.gateway6)
    try:
        answers.parameters.append(_interface(current, answers))
        answers.parameters += ["netcfg/disable_autoconfig=true", *_static(address, gateway, answers)]
        answers.parameters += _resolver_and_names(current, answers)
    except PlanError as error:
        raise PlanError(f"--network {mode}: {error}, or use --network dhcp") from None
    how = "--network keep" if keep else "--network auto keeps it"
    answers.decisions.insert(
        0,
        f"network: static {address} via {gateway or 'no gateway'} on {current.link.name}, "
        f"DNS {' '.join(current.nameservers) or 'none'}: this machine's default route ({how})",
    )
    if current.ipv4 and current.ipv6:
        answers.warnings.append(_ipv6_not_carried(current))
    return answers


def _interface(current: Network, answers: Answers) -> str:
    """netcfg/choose_interface: the NIC by its MAC when it has one, so a new name does not matter."""
    link = current.link
    name, mac = link.name, link.mac
    if link.kind in ("bridge", "bond", "team") and link.ports:
        name, mac = link.ports[0]
        answers.warnings.append(
            f"network: {link.name} is a {link.kind} over {', '.join(port for port, _ in link.ports)}; the installer "
            f"has no {link.kind}, so it configures {name} itself with {link.name}'s address"
            + (" (the other ports stay unused)" if len(link.ports) > 1 else "")
        )
    elif link.kind:
        answers.warnings.append(
            f"network: {link.name} is a {link.kind} interface, which the installer does not create; it may not "
            "find the interface or reach the network: use --network dhcp, or a preseed that sets it up"
        )
    if mac:
        answers.decisions.append(
            f"network: the installer picks the interface by its MAC {mac} ({name} here), whatever it names it"
        )
        return parameter("netcfg/choose_interface", mac, "the MAC address")
    answers.warnings.append(
        f"network: {name} has no Ethernet address to choose it by; the installer may name it differently"
    )
    return parameter("netcfg/choose_interface", name, "the interface name")


def _static(address: Address, gateway: str, answers: Answers) -> list[str]:
    """get_ipaddress, get_netmask and get_gateway, with the gateway inside the subnet as netcfg demands."""
    prefix = address.prefix
    gateway_ip = ipaddress.ip_address(gateway) if gateway else None
    if gateway_ip is not None and gateway_ip.is_link_local:
        answers.warnings.append(
            f"network: the IPv6 gateway {gateway} is link-local, and netcfg takes only a gateway inside the "
            f"address's prefix: the installer gets {address} without a gateway, and a default route only "
            "if a router advertises one"
        )
        gateway = "none"
    elif gateway_ip is not None and gateway_ip.version == 4 and prefix == 32:
        answers.decisions.append(
            f"network: {address} with the on-link gateway {gateway} outside it (as on /32 hosting networks): "
            f"the installer's netcfg (bookworm's and later) routes `default via {gateway} dev … onlink`"
        )
    elif gateway_ip is not None and not address.holds(gateway):
        prefix = _common_prefix(address.address, gateway)
        answers.warnings.append(
            f"network: the gateway {gateway} is outside {address}; netcfg refuses a gateway outside the subnet "
            f'("Unreachable gateway") except on a /32, so the installer gets {address.address}/{prefix}, the '
            f"smallest subnet holding both: hosts in it other than the gateway are reached directly, not through it"
        )
    netmask = str(ipaddress.ip_interface(f"{address.address}/{prefix}").netmask)
    return [
        parameter("netcfg/get_ipaddress", address.address, "the address"),
        parameter("netcfg/get_netmask", netmask, "the netmask"),
        parameter("netcfg/get_gateway", gateway or "none", "the gateway"),
    ]


def _common_prefix(address: str, gateway: str) -> int:
    """The longest prefix two addresses of one family share."""
    first, second = ipaddress.ip_address(address), ipaddress.ip_address(gateway)
    return first.max_prefixlen - (int(first) ^ int(second)).bit_length()


def _resolver_and_names(current: Network, answers: Answers) -> list[str]:
    servers = list(current.nameservers[:NAMESERVERS_MAX])
    if len(current.nameservers) > NAMESERVERS_MAX:
        answers.warnings.append(
            f"network: netcfg takes {NAMESERVERS_MAX} name servers; "
            f"{' '.join(current.nameservers[NAMESERVERS_MAX:])} are left out"
        )
    extra_search = [domain for domain in current.search if domain != current.domain]
    if extra_search:
        answers.warnings.append(
            f"network: netcfg takes one search domain ({current.domain or 'none'}); "
            f"{' '.join(extra_search)} are left out"
        )
    return [
        *([parameter("netcfg/get_nameservers", servers, "the name server")] if servers else []),
        "netcfg/confirm_static=true",
        *([parameter("netcfg/get_hostname", current.hostname, "the host name")] if current.hostname else []),
        parameter("netcfg/get_domain", current.domain, "the domain"),
    ]


def _ipv6_not_carried(current: Network) -> str:
    static = [str(address) for address in current.ipv6 if not address.dynamic]
    if static:
        return (
            f"network: IPv6 {' '.join(static)} via {current.gateway6 or 'no gateway'} is not carried: netcfg "
            "configures one static address of one family, and this one is IPv4; the installer still takes "
            "IPv6 addresses by SLAAC when a router advertises them"
        )
    return (
        f"network: IPv6 {' '.join(map(str, current.ipv6))} comes from SLAAC here; netcfg configures IPv4 statically, "
        "and the installer's kernel takes a SLAAC address by itself when the router advertises one"
    )


def preseed_parameters(spec: str, scratch: str) -> tuple[list[str], list[PlannedFile], str]:
    """For --preseed: the kernel parameters, the extra initrd, and why.

    An https URL is fetched by the installer (its wget checks the certificate); an http or ftp one
    is fetched here first and pinned by its MD5 (preseed/url/checksum, the sum the installer's
    preseed_fetch checks), so a file swapped on the way is refused by the installer instead of run.
    """
    if re.match(r"[a-z]+://", spec):
        url = parameter("preseed/url", spec, "--preseed")
        if spec.startswith("https://"):
            return [url], [], f"preseed: the installer fetches {spec} (preseed/url, https)"
        if not spec.startswith(("http://", "ftp://")):
            raise PlanError(f"--preseed {spec}: give an https, http or ftp URL, or a local preseed file")
        import hashlib

        from .download import fetch_bytes

        content = fetch_bytes(spec, max_bytes=MAX_ANSWER_FILE)
        checksum = hashlib.md5(content).hexdigest()  # the sum preseed checks (usedforsecurity= is Python 3.9+)
        return (
            [url, f"preseed/url/checksum={checksum}"],
            [],
            f"preseed: the installer fetches {spec} and checks it is the {len(content)} bytes read here "
            f"(preseed/url/checksum MD5 {checksum})",
        )
    from .errors import UsageError

    try:
        content = read_regular(spec, MAX_ANSWER_FILE, "preseed file")
    except UsageError as error:
        raise PlanError(f"--preseed {spec}: {error}; give a preseed file or an https URL") from None
    archive = os.path.join(scratch, "preseed.cpio")
    with open(archive, "wb") as file:
        file.write(cpio.archive([("preseed.cfg", cpio.REGULAR, content)]))
    return (
        [],
        [
            PlannedFile(
                archive, os.path.abspath(spec), "made here: a cpio archive holding it as /preseed.cfg", temporary=True
            )
        ],
        f"preseed: {spec} as /preseed.cfg in an extra initrd (the installer reads it at start)",
    )


# network-console is not in the netboot initrd: anna downloads it (with openssh-server-udeb) as .udeb
# files from the mirror the installer itself is set to use, in its "Download installer components" step.
NETWORK_CONSOLE_WARNING = (
    "--ssh-key: network-console and openssh-server-udeb are not in the netboot initrd; the installer downloads "
    "them from its own Debian mirror once its network is up, so SSH answers only after that step (the questions "
    'before it, language, keyboard and mirror, need answers: --preseed, or --append "auto=true priority=critical")'
)


def ssh_key_parameters(spec: str) -> tuple[list[str], str]:
    """For --ssh-key: the kernel parameters that load and set up the installer's network-console, and why.

    network-console fetches network-console/authorized_keys_url into the `installer` user's
    authorized_keys (the installation guide's example preseed gives it an http URL); the installer's
    URL fetcher, fetch-url, has a method per scheme in the netboot initrd's /usr/lib/fetch-url/, and
    its `base64` method decodes the text after base64://, so a local key travels on the command line
    itself. (Its `file` method would read a file from an extra initrd too, but it first runs
    mountmedia, which mounts the machine's own disks on /media looking for removable media.)
    anna/choose_modules=network-console makes anna load network-console; password-disabled=true
    leaves keys as the only way in and skips the password question, which nobody could answer remotely.
    Not read in network-console's own source (its .udeb and source tarball are unreachable from the
    machines this was written on): that it fetches the URL through fetch-url, as the initrd's
    preseed_fetch and net-retriever do; the README says what is proven and what is not.
    """
    if "://" in spec:
        if not spec.startswith("https://"):
            raise PlanError(
                f"--ssh-key {spec}: give an https URL (the installer's wget checks its certificate) or a local public "
                "key file; a key fetched over plain http or ftp could be swapped on the way, handing the installer's "
                "root shell to whoever swapped it"
            )
        url = parameter("network-console/authorized_keys_url", spec, "--ssh-key")
        why = f"ssh: network-console takes its authorized keys from {spec}, fetched by the installer (https)"
    else:
        import base64

        keys = authorized_keys(spec)
        encoded = "base64://" + base64.b64encode(keys).decode()
        url = f"network-console/authorized_keys_url={encoded}"
        if len(encoded) > MAX_KEYS_PARAMETER:
            raise PlanError(
                f"--ssh-key {spec}: {len(keys)} bytes of keys are too long for the kernel command "
                f"line ({len(encoded)} characters encoded, {MAX_KEYS_PARAMETER} allowed); keep fewer "
                "keys (an ed25519 key is about 100 bytes) or serve them at an https URL"
            )
        count = len(keys.splitlines())
        why = (
            f"ssh: network-console with {count} authorized key{'s' if count > 1 else ''} from {spec}, "
            "on the command line (network-console/authorized_keys_url=base64://…)"
        )
    return ["anna/choose_modules=network-console", url, "network-console/password-disabled=true"], why


def authorized_keys(path: str) -> bytes:
    """The OpenSSH public keys in `path`, one a line (comments and blank lines dropped), each checked."""
    import base64
    import binascii

    from .errors import UsageError

    def refuse(why: str) -> PlanError:
        return PlanError(f"--ssh-key {path}: {why}")

    try:
        text = read_regular(path, MAX_ANSWER_FILE, "public key file").decode("utf-8", "replace")
    except UsageError as error:
        raise refuse(f"{error}; give an OpenSSH public key file (like ~/.ssh/id_ed25519.pub) or an https URL") from None
    if "PRIVATE KEY-----" in text:
        raise refuse(
            f"this is a private key, which must not leave this machine; give the public one "
            f"({path}.pub, or `ssh-keygen -y -f {path}` prints it)"
        )
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # A key type, then its base64 blob; authorized_keys lines may put options (from="…",no-pty) first.
        found = re.search(rf"(?:^|\s)({SSH_KEY_TYPES.pattern})\s+(\S+)", line)
        try:
            # The blob starts with the key's own type: a 4-byte length, then the name.
            decoded = base64.b64decode(found.group(2), validate=True) if found else b""
            named = decoded[4 : 4 + int.from_bytes(decoded[:4], "big")].decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            named = None
        if not found or named != found.group(1):
            raise refuse(
                f"line {number} is not an OpenSSH public key (it starts {line[:24]!r}); expected a line "
                "like `ssh-ed25519 AAAA… comment` (types: ssh-ed25519, ssh-rsa, ecdsa-sha2-*, sk-*)"
            )
        keys.append(line)
    if not keys:
        raise refuse("holds no public key; give an OpenSSH public key file (like ~/.ssh/id_ed25519.pub)")
    return "\n".join(keys).encode() + b"\n"
