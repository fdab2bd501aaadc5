"""`kexec-bin netboot debian`: boot the Debian installer from a mirror, verified along Debian's signed chain.

Downloads (into the user's cache) and checks InRelease → SHA256SUMS → kernel and initrd, keeps the
running machine's console and IPv4 address for the installer, prints the plan, and only with
--load-only or --yes loads it (and boots it).
"""

from __future__ import annotations

import argparse
import os
import re

from . import plan
from .errors import PlanError
from .wayback import plan_way_back

# The RAM below which the installer itself refuses to run, in MiB: the "min" levels of its lowmem
# check (rootskel's S15lowmem, in the initrd). Architectures it does not list get amd64's level.
INSTALLER_MINIMUM_MIB = {"amd64": 316, "i386": 269, "arm64": 200, "ppc64el": 195, "armhf": 120}
# The key types OpenSSH's sshd accepts in authorized_keys (DSA is off by default since 7.0).
SSH_KEY_TYPES = re.compile(
    r"ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com"
)
# The longest --ssh-key FILE may get on the kernel command line, encoded: half of x86's and arm64's
# 2048-byte limit, leaving the rest for the console, network and --append parameters.
MAX_KEYS_PARAMETER = 1024
APT_SOURCES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("distribution", choices=["debian"], help="the installer to boot (Debian's, for now)")
    parser.add_argument(
        "--release",
        default="stable",
        metavar="SUITE",
        help="a suite or codename as the archive names it (stable, oldstable, trixie, bookworm) "
        "or a release number (12, 13); default stable",
    )
    parser.add_argument("--arch", default="auto", help="Debian architecture; auto: this machine's (default)")
    parser.add_argument(
        "--mirror",
        metavar="URL",
        help="Debian mirror (the folder holding dists/); default: the first one in this host's apt sources",
    )
    parser.add_argument(
        "--keyring",
        metavar="FILE",
        help="OpenPGP keyring that verifies InRelease (default: the host's debian-archive-keyring, "
        "else the copy in the wheel)",
    )
    parser.add_argument(
        "--console",
        default="auto",
        metavar="auto|none|DEV[,SPEED]",
        help="the installer's console; auto: the running kernel's (default)",
    )
    parser.add_argument(
        "--network",
        default="auto",
        choices=["auto", "dhcp", "keep"],
        help="keep: give the installer this machine's IPv4 address, gateway and DNS as static "
        "settings; dhcp: let it ask DHCP; auto: keep when there is a default route (default)",
    )
    parser.add_argument(
        "--preseed",
        metavar="FILE|URL",
        help="a preseed file: a local FILE goes in an extra initrd as /preseed.cfg, a URL is "
        "fetched by the installer (preseed/url)",
    )
    parser.add_argument(
        "--ssh-key",
        metavar="FILE|URL",
        help="start the installer's network-console (SSH, user 'installer') with these authorized "
        "keys: a local public key FILE travels on its command line, an https URL is fetched by "
        "the installer; password logins stay off",
    )
    parser.add_argument(
        "--append",
        default="",
        metavar="PARAMETERS",
        help="more kernel parameters for the installer (e.g. priority=low)",
    )
    parser.add_argument("--root", default="/", help="read /proc and /sys under this folder (default: /)")
    plan.add_mode_options(parser)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from . import debian

    arch = debian.machine_arch() if args.arch == "auto" else args.arch
    # A plan for another architecture may be looked at (--dry-run), never loaded.
    if args.mode != plan.DRY_RUN and arch != debian.machine_arch():
        raise PlanError(
            f"--arch {arch}: this machine runs {debian.machine_arch()}, and kexec boots kernels of "
            "the running architecture only; drop --arch, or use --dry-run to only see the plan"
        )
    # A bad key is refused before anything is downloaded.
    ssh, why_ssh = ssh_key_parameters(args.ssh_key) if args.ssh_key else ([], "")
    mirror = args.mirror or default_mirror()
    keyring = debian.choose_keyring(args.keyring)
    release = debian.release(mirror, args.release, keyring)
    sums, kernel, initrd = debian.installer_files(mirror, release, arch)
    decisions = [
        f"InRelease {release.url}: good signature by {', '.join(release.signers)} (keyring {release.keyring}); "
        f"Suite {release.suite}, Codename {release.codename}, Version {release.version}, "
        f"Date {release.date} ({release.age_days:.0f} days old)",
        f"SHA256SUMS {sums.url}: {sums.check}",
    ]
    warnings = [warning for warning in [release.staleness()] if warning]
    console, why_console = plan.console_parameters(args.console, args.root)
    network, why_network = network_parameters(args.network, args.root)
    decisions += [why_console, why_network]
    with tempfile.TemporaryDirectory(prefix="kexec-bin-netboot-") as scratch:
        initrds = [plan.PlannedFile(str(initrd.path), initrd.url, initrd.check)]
        preseed: list[str] = []
        if args.preseed:
            preseed, extra, why_preseed = preseed_parameters(args.preseed, scratch)
            initrds += extra
            decisions.append(why_preseed)
        if args.ssh_key:
            decisions.append(why_ssh)
            warnings.append(NETWORK_CONSOLE_WARNING)
        minimum = INSTALLER_MINIMUM_MIB.get(arch, INSTALLER_MINIMUM_MIB["amd64"])
        decisions.append(
            f"memory: the installer needs {minimum} MiB of RAM on {arch} (its own lowmem minimum) "
            f"besides the files kexec holds until it boots"
        )
        boot_plan = plan.BootPlan(
            title=f"Debian {release.version} ({release.codename}) installer, netboot, {arch}",
            kernel=plan.PlannedFile(str(kernel.path), kernel.url, kernel.check),
            initrds=initrds,
            cmdline=" ".join([*console, *network, *preseed, *ssh, *args.append.split()]),
            decisions=decisions,
            warnings=warnings,
            memory_needed=minimum << 20,
        )
        plan_way_back(boot_plan, args, args.root, scratch)
        return plan.carry_out(boot_plan, args.mode, exec_after=args.exec_after, root=args.root)


def default_mirror(sources: tuple[str, ...] = APT_SOURCES) -> str:
    """The first archive URI in this host's apt sources (one-line and deb822 formats)."""
    files = []
    for source in sources:
        if os.path.isdir(source):
            files += sorted(
                os.path.join(source, name) for name in os.listdir(source) if name.endswith((".list", ".sources"))
            )
        elif os.path.isfile(source):
            files.append(source)
    for name in files:
        with open(name, encoding="utf-8", errors="replace") as file:
            found = re.search(r"^[ \t]*(?:deb[ \t]+(?:\[[^\]]*\][ \t]+)?|URIs:[ \t]*)(https?://\S+)", file.read(), re.M)
        if found:
            return found.group(1)
    raise PlanError(
        "no --mirror given and no http(s) archive in this host's apt sources: "
        "pass --mirror URL (a Debian mirror, the folder that holds dists/)"
    )


def network_parameters(mode: str, root: str = "/") -> tuple[list[str], str]:
    """netcfg's preseed answers for `--network`, and why."""
    from .network import default_route

    if mode == "dhcp":
        return [], "network: the installer asks DHCP (--network dhcp)"
    current = default_route(root)
    if current is None:
        if mode == "keep":
            raise PlanError(
                "--network keep: this machine has no IPv4 default route to keep (/proc/net/route); use --network dhcp"
            )
        return [], "network: no IPv4 default route here, so the installer asks DHCP"
    servers = " ".join(current.nameservers)
    answers = [
        f"netcfg/choose_interface={current.interface}",
        "netcfg/disable_autoconfig=true",
        f"netcfg/get_ipaddress={current.address}",
        f"netcfg/get_netmask={current.netmask}",
        f"netcfg/get_gateway={current.gateway}",
        f'netcfg/get_nameservers="{servers}"' if " " in servers else f"netcfg/get_nameservers={servers}",
        "netcfg/confirm_static=true",
        *([f"netcfg/get_hostname={current.hostname}"] if current.hostname else []),
        f"netcfg/get_domain={current.domain}",
    ]
    return answers, (
        f"network: static {current.address}/{current.prefix} via {current.gateway} on {current.interface}, "
        f"DNS {servers or 'none'}: this machine's default route "
        f"({'--network keep' if mode == 'keep' else '--network auto keeps it'})"
    )


def preseed_parameters(spec: str, scratch: str) -> tuple[list[str], list[plan.PlannedFile], str]:
    """For --preseed: the kernel parameters, the extra initrd, and why."""
    if re.match(r"(https?|ftp)://", spec):
        return [f"preseed/url={spec}"], [], f"preseed: the installer fetches {spec} (preseed/url)"
    try:
        with open(spec, "rb") as file:
            content = file.read()
    except OSError as error:
        raise PlanError(f"--preseed {spec}: {error.strerror}; give a readable preseed file or an http(s) URL") from None
    archive = os.path.join(scratch, "preseed.cpio")
    with open(archive, "wb") as file:
        file.write(newc_archive({"preseed.cfg": content}))
    return (
        [],
        [plan.PlannedFile(archive, os.path.abspath(spec), "made here: a cpio archive holding it as /preseed.cfg")],
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
        if not spec.startswith("https://") or re.search(r"\s", spec):
            raise PlanError(
                f"--ssh-key {spec}: give an https URL (the installer's wget checks its certificate) or a local public "
                "key file; a key fetched over plain http or ftp could be swapped on the way, handing the installer's "
                "root shell to whoever swapped it"
            )
        url, why = spec, f"ssh: network-console takes its authorized keys from {spec}, fetched by the installer (https)"
    else:
        import base64

        keys = authorized_keys(spec)
        url = "base64://" + base64.b64encode(keys).decode()
        if len(url) > MAX_KEYS_PARAMETER:
            raise PlanError(
                f"--ssh-key {spec}: {len(keys)} bytes of keys are too long for the kernel command "
                f"line ({len(url)} characters encoded, {MAX_KEYS_PARAMETER} allowed); keep fewer "
                "keys (an ed25519 key is about 100 bytes) or serve them at an https URL"
            )
        count = len(keys.splitlines())
        why = (
            f"ssh: network-console with {count} authorized key{'s' if count > 1 else ''} from {spec}, "
            "on the command line (network-console/authorized_keys_url=base64://…)"
        )
    return [
        "anna/choose_modules=network-console",
        f"network-console/authorized_keys_url={url}",
        "network-console/password-disabled=true",
    ], why


def authorized_keys(path: str) -> bytes:
    """The OpenSSH public keys in `path`, one a line (comments and blank lines dropped), each checked."""
    import base64
    import binascii

    def refuse(why: str) -> PlanError:
        return PlanError(f"--ssh-key {path}: {why}")

    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read(1 << 20)
    except OSError as error:
        raise refuse(
            f"{error.strerror}; give an OpenSSH public key file (like ~/.ssh/id_ed25519.pub) or an https URL"
        ) from None
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


def newc_archive(files: dict[str, bytes]) -> bytes:
    """An uncompressed cpio archive ("newc", the format the kernel unpacks) of regular files at the root."""
    out = bytearray()
    for inode, (name, data) in enumerate([*files.items(), ("TRAILER!!!", b"")], start=1):
        encoded = name.encode() + b"\0"
        mode = 0 if name == "TRAILER!!!" else 0o100644
        fields = [inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out += b"070701" + b"".join(b"%08X" % value for value in fields) + encoded
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)
