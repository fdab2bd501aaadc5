"""Small Debian systems for the user stories: debootstrap'd, with python3 and pip, without kexec-tools.

A `Flavour` says what goes in beyond debootstrap's minbase: `CONSOLE` boots straight into the
harness's console loop (init=/vmtest-init); `SYSTEMD` boots systemd as PID 1 with the same loop as
a service on the serial console, sshd taking a test key, and a newer kernel from the suite's
backports beside the suite's own (two kernels, as on a machine with an update waiting).

The root file system is an ext4 image made with `mkfs.ext4 -d`; the kernels and initrds of its
/boot are kept beside it so QEMU can start them directly. The image is built once and cached;
guests boot it with `-snapshot`, so a test never changes the cached copy.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..apt import host_archives
from ..paths import cache_dir
from . import guests, initramfs
from .binaries import wheel_for
from .machine import Machine

SUITE = "bookworm"
# The kernel comes with its initramfs-tools initrd, as on any installed Debian; no kexec-tools.
PACKAGES = ("linux-image-amd64", "initramfs-tools", "python3", "python3-pip", "iproute2")
INIT = "/vmtest-init"
# Root file system setup before the shared console loop (the initrd has mounted / read-only).
SETUP = """export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -o remount,rw /
mkdir -p /mnt && mount -o ro /dev/vdb /mnt
"""
# Under systemd the console loop is a service on the serial console (in place of its getty);
# systemd has mounted everything but a second disk, where tests put the wheel.
CONSOLE_SERVICE_SETUP = """export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
if [ -b /dev/vdb ]; then mkdir -p /mnt && mount -o ro /dev/vdb /mnt; fi
"""
CONSOLE_SERVICE = """[Unit]
Description=The test harness's console loop on the serial console
After=systemd-user-sessions.service
[Service]
ExecStart=/vmtest-console
StandardInput=tty-force
StandardOutput=inherit
StandardError=inherit
TTYPath=/dev/ttyS0
TTYReset=yes
[Install]
WantedBy=multi-user.target
"""
NETWORK = """[Match]
Name=en* eth*
[Network]
DHCP=yes
"""


@dataclass(frozen=True)
class Flavour:
    """What a guest image holds beyond debootstrap's minbase, and how it boots."""

    name: str
    packages: tuple[str, ...]
    backports: tuple[str, ...] = ()
    """Packages then installed from <suite>-backports (a newer kernel beside the suite's own)."""
    systemd: bool = False
    """systemd as PID 1, the console loop as its service, sshd with a test key; else init=/vmtest-init."""


CONSOLE = Flavour("console", PACKAGES)
SYSTEMD = Flavour("systemd", (*PACKAGES, "systemd-sysv", "udev", "openssh-server"),
                  backports=("linux-image-amd64",), systemd=True)


@dataclass(frozen=True)
class DebianGuest:
    """The cached guest: root image, the kernels and initrds of its /boot, and its SSH key if it has sshd."""

    image: Path
    flavour: Flavour
    versions: tuple[str, ...]
    """Kernel releases in /boot: the suite's own first (the one `kernel` starts), then the backports'."""
    ssh_key: Path | None = None

    @property
    def version(self) -> str:
        """The release of the kernel a guest starts on, as in /boot/vmlinuz-<version>."""
        return self.versions[0]

    @property
    def kernel(self) -> Path:
        return self.image.parent / f"vmlinuz-{self.version}"

    @property
    def initrd(self) -> Path:
        return self.image.parent / f"initrd.img-{self.version}"

    def cmdline(self, extra: str = "") -> str:
        """The command line that boots this image as root (QEMU adds the console)."""
        boot = "root=/dev/vda rw quiet" if self.flavour.systemd else f"root=/dev/vda ro init={INIT} quiet"
        return f"{boot} {extra}".strip()


def debian_guest(arch: str = "amd64", flavour: Flavour = CONSOLE) -> DebianGuest:
    """The guest for `arch` and `flavour`, debootstrapped and imaged on first use (minutes), then cached."""
    # A change to what goes into the guest names a new cache entry.
    recipe = hashlib.sha256(repr((flavour, SETUP, CONSOLE_SERVICE_SETUP, CONSOLE_SERVICE, NETWORK,
                                  initramfs.CONSOLE_LOOP)).encode()).hexdigest()[:12]
    folder = cache_dir() / "vm" / f"debian-guest-{SUITE}-{arch}-{flavour.name}-{recipe}"
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=folder.name, dir=folder.parent))
        try:
            _build(partial, arch, flavour)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        partial.rename(folder)
    key = folder / "ssh_key"
    return DebianGuest(image=folder / "root.ext4", flavour=flavour,
                       versions=tuple((folder / "versions").read_text().split()),
                       ssh_key=key if key.exists() else None)


def _build(into: Path, arch: str, flavour: Flavour) -> None:
    tree = into / "tree"
    archive = host_archives()[0].uri
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--arch={arch}", f"--include={','.join(flavour.packages)}",
         SUITE, str(tree), archive],
        check=True, capture_output=True,
    )
    versions = _kernel_versions(tree)
    if flavour.backports:
        _install_backports(tree, archive, flavour.backports)
        versions += [version for version in _kernel_versions(tree) if version not in versions]
    for deb in (tree / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    if flavour.systemd:
        _set_up_systemd(tree, into)
    else:
        _write_executable(tree / INIT.lstrip("/"), initramfs.init_script(SETUP))
    for version in versions:
        for name in (f"vmlinuz-{version}", f"initrd.img-{version}"):
            shutil.copyfile(tree / "boot" / name, into / name)
    (into / "versions").write_text("\n".join(versions) + "\n")
    make_ext4(tree, into / "root.ext4")
    shutil.rmtree(tree)


def _kernel_versions(tree: Path) -> list[str]:
    return sorted(path.name.removeprefix("vmlinuz-") for path in (tree / "boot").glob("vmlinuz-*"))


def _install_backports(tree: Path, archive: str, packages: tuple[str, ...]) -> None:
    """apt-get install `packages` from <suite>-backports inside `tree`, then forget that source again."""
    source = tree / "etc/apt/sources.list.d/backports.list"
    source.write_text(f"deb {archive} {SUITE}-backports main\n")
    subprocess.run(["mount", "-t", "proc", "proc", str(tree / "proc")], check=True)
    try:
        for command in (["apt-get", "update"],
                        ["apt-get", "install", "-y", "--no-install-recommends", "-t", f"{SUITE}-backports", *packages]):
            subprocess.run(["chroot", str(tree), *command], check=True, capture_output=True,
                           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"})
    finally:
        subprocess.run(["umount", str(tree / "proc")], check=True)
    source.unlink()
    subprocess.run(["chroot", str(tree), "apt-get", "update"], check=True, capture_output=True)


def _set_up_systemd(tree: Path, into: Path) -> None:
    """The console loop as a service on ttyS0, DHCP on the first NIC, root's SSH key, an fstab for /."""
    _write_executable(tree / "vmtest-console", initramfs.init_script(CONSOLE_SERVICE_SETUP))
    system = tree / "etc/systemd/system"
    (system / "vmtest-console.service").write_text(CONSOLE_SERVICE)
    # The loop owns the serial console; a getty there would fight it for the input.
    (system / "serial-getty@ttyS0.service").symlink_to("/dev/null")
    (tree / "etc/systemd/network/80-dhcp.network").write_text(NETWORK)
    subprocess.run(["chroot", str(tree), "systemctl", "enable", "vmtest-console.service", "systemd-networkd.service"],
                   check=True, capture_output=True)
    (tree / "etc/fstab").write_text("/dev/vda / ext4 rw 0 1\n")
    (tree / "etc/hostname").write_text("kexec-guest\n")
    key = into / "ssh_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kexec-bin tests", "-f", str(key)], check=True)
    ssh = tree / "root/.ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    shutil.copyfile(key.with_suffix(".pub"), ssh / "authorized_keys")


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def qemu_drives(guest: DebianGuest, *disks: Path) -> list[str]:
    """QEMU options for the guest's root image as /dev/vda (never written: -snapshot), then `disks` as vdb, …"""
    options = ["-snapshot"]
    for image in (guest.image, *disks):
        options += ["-drive", f"file={image},if=virtio,format=raw"]
    return options


def ssh_forward(port: int) -> list[str]:
    """QEMU options for a NIC whose guest port 22 is reachable on 127.0.0.1:`port` of the host."""
    return ["-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:22"]


def disk_with(files: list[Path], image: Path) -> Path:
    """An ext4 image holding `files` at its top (the guests mount a second disk on /mnt)."""
    folder = image.with_suffix(".tree")
    folder.mkdir()
    for file in files:
        shutil.copyfile(file, folder / file.name)
    return make_ext4(folder, image)


def make_ext4(tree: Path, image: Path) -> Path:
    """An ext4 image holding `tree`, with room to spare for what the guest writes."""
    used_kib = int(subprocess.run(["du", "-sk", str(tree)], capture_output=True, text=True, check=True).stdout.split()[0])
    size_mib = used_kib * 13 // 10 // 1024 + 64
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(image), f"{size_mib}M"], check=True, capture_output=True)
    return image


def start_with_wheel(start: Callable[..., Machine], folder: Path, *, flavour: Flavour = CONSOLE, cmdline: str = "",
                     qemu_options: Sequence[str] = ()) -> tuple[Machine, str]:
    """The amd64 guest of `flavour` under `-snapshot` with the x86_64 wheel on a second disk at /mnt,
    started by `start(target, kernel=, initrd=, cmdline=, qemu_options=)` (the tests' `vm.start`, or
    `start_logged`); returns the machine at its prompt and the wheel's file name."""
    guest = debian_guest(flavour=flavour)
    wheel = wheel_for("x86_64")
    machine = start(
        "x86_64",
        kernel=guest.kernel,
        initrd=guest.initrd,
        cmdline=guest.cmdline(cmdline),
        qemu_options=[*qemu_drives(guest, disk_with([wheel], folder / "wheels.ext4")), *qemu_options],
    )
    return machine, wheel.name


def start_logged(log: Path) -> Callable[..., Machine]:
    """A `start` for `start_with_wheel` outside the tests: QEMU's console kept in `log`."""
    return lambda target, **options: guests.start(guests.BOARDS[target], log=log, **options)


# QEMU's user network (`-nic user`): the host as the guest sees it, and its DNS proxy.
USER_NET_HOST, USER_NET_DNS = "10.0.2.2", "10.0.2.3"
USER_NIC = ("-nic", "user,model=virtio-net-pci")


def set_static_address(machine: Machine, address: str) -> str:
    """Give the guest's one NIC (on `USER_NIC`) `address`/24 with QEMU's host as gateway, as an
    administrator would (the guest runs no DHCP client); return the NIC's name."""
    machine.run("modprobe virtio_net")
    # The initramfs's udev named the NIC (ens2, enp0s3…): the one link that is not loopback.
    (nic,) = [name for name in machine.run("ls /sys/class/net").split() if name != "lo"]
    machine.run(f"ip link set {nic} up && ip addr add {address}/24 dev {nic} && "
                f"ip route add default via {USER_NET_HOST} && echo 'nameserver {USER_NET_DNS}' > /etc/resolv.conf")
    return nic
