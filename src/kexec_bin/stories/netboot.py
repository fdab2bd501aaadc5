"""`kexec-bin netboot debian`: boot the Debian installer from a mirror, verified along Debian's signed chain.

Downloads (into the user's cache) and checks InRelease → SHA256SUMS → kernel and initrd (or, where
the mirror lacks the installer images, InRelease → Packages → the netboot package), keeps the
running machine's console and network for the installer, prints the plan, and only with
--load-only or --yes loads it (and boots it).
"""

from __future__ import annotations

import argparse

from .. import plan
from ..errors import PlanError
from ..wayback import add_deadline_option, plan_way_back

# The RAM below which the installer itself refuses to run, in MiB: the "min" levels of its lowmem
# check (rootskel's S15lowmem, in the initrd). Architectures it does not list get amd64's level.
INSTALLER_MINIMUM_MIB = {"amd64": 316, "i386": 269, "arm64": 200, "ppc64el": 195, "armhf": 120}


EXAMPLES = """examples:
  kexec-bin netboot debian                download and verify the installer, print the plan (nothing is loaded)
  kexec-bin netboot debian --release bookworm --ssh-key ~/.ssh/id_ed25519.pub --yes
                                          reinstall over SSH: network-console with this key, this host's network kept
  kexec-bin netboot debian --mirror http://mirror.example/debian --network dhcp --load-only"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.add_argument("distribution", choices=["debian"], help="the installer to boot (Debian's, for now)")
    parser.add_argument(
        "--release",
        default="trixie",
        metavar="SUITE",
        help="a suite or codename as the archive names it (stable, oldstable, trixie, bookworm) "
        "or a release number (12, 13), resolved from the archive's signed Release files; default trixie",
    )
    parser.add_argument("--arch", default="auto", help="Debian architecture; auto: this machine's (default)")
    parser.add_argument(
        "--mirror",
        metavar="URL",
        help="Debian mirror (the folder holding dists/: http, https, file:// or a folder); default: the Debian "
        "archive in this host's apt sources whose Suites include the release, else its first Debian archive",
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
        help="keep: give the installer this machine's static address (IPv4, else IPv6), gateway, DNS and "
        "names, its NIC chosen by MAC; dhcp: let it configure itself (DHCP, SLAAC); auto: keep when there is "
        "a default route with a static address (default); see docs/netboot-networks.md",
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
    plan.add_story_options(parser)
    add_deadline_option(parser)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from .. import answers
    from ..debian import archive, installer
    from ..download import check_url
    from ..read import Tree
    from ..trust import check_kernel

    # Every argument is checked before anything is downloaded.
    release_name = archive.check_suite(args.release)
    given_mirror = check_url(args.mirror) if args.mirror is not None else None
    arch = installer.machine_arch() if args.arch == "auto" else args.arch
    # A plan for another architecture may be looked at (--dry-run), never loaded.
    if args.mode != plan.DRY_RUN and arch != installer.machine_arch():
        raise PlanError(
            f"--arch {arch}: this machine runs {installer.machine_arch()}, and kexec boots kernels of "
            "the running architecture only; drop --arch, or use --dry-run to only see the plan"
        )
    ssh, why_ssh = answers.ssh_key_parameters(args.ssh_key) if args.ssh_key else ([], "")
    keyrings = archive.keyrings(args.keyring)
    mirror, why_mirror = archive.choose_mirror(given_mirror, release_name, Tree(args.root))
    release = archive.resolve_release(mirror, release_name, keyrings)
    # A kernel this host will not load (Secure Boot) is refused before the initrd is downloaded.
    found = installer.installer_files(mirror, release, arch, accept_kernel=lambda path: check_kernel(path, args.root))
    kernel, initrd = found.kernel, found.initrd
    decisions = [
        why_mirror,
        f"InRelease {release.url}: {release.signature_text()}; "
        f"Suite {release.suite}, Codename {release.codename}, Version {release.version or 'none'}, "
        f"Date {release.date} ({release.age_days:.0f} days old)",
        *found.decisions,
    ]
    warnings = [warning for warning in [release.staleness()] if warning]
    console, why_console = plan.console_parameters(args.console, args.root)
    network = answers.network_parameters(args.network, args.root)
    decisions += [why_console, *network.decisions]
    warnings += network.warnings
    with tempfile.TemporaryDirectory(prefix="kexec-bin-netboot-") as scratch:
        initrds = [plan.PlannedFile(str(initrd.path), initrd.url, initrd.check)]
        preseed: list[str] = []
        if args.preseed:
            preseed, extra, why_preseed = answers.preseed_parameters(args.preseed, scratch)
            initrds += extra
            decisions.append(why_preseed)
        if args.ssh_key:
            decisions.append(why_ssh)
            warnings.append(answers.NETWORK_CONSOLE_WARNING)
        minimum = INSTALLER_MINIMUM_MIB.get(arch, INSTALLER_MINIMUM_MIB["amd64"])
        decisions.append(
            f"memory: the installer needs {minimum} MiB of RAM on {arch} (its own lowmem minimum) "
            f"besides the files kexec holds until it boots"
        )
        boot_plan = plan.BootPlan(
            title=f"Debian {release.version or release.suite} ({release.codename}) installer, netboot, {arch}",
            kernel=plan.PlannedFile(str(kernel.path), kernel.url, kernel.check),
            initrds=initrds,
            cmdline=" ".join([*console, *network.parameters, *preseed, *ssh, *args.append.split()]),
            decisions=decisions,
            warnings=warnings,
            memory_needed=minimum << 20,
        )
        plan_way_back(boot_plan, args, args.root, scratch)  # panic=, and the installer's deadline
        return plan.carry_out(boot_plan, args.mode, exec_after=args.exec_after, root=args.root)
