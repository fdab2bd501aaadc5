"""A small Debian system for the user story: debootstrap'd, with python3 and pip, without kexec-tools.

The root file system is an ext4 image made with `mkfs.ext4 -d`; its kernel and initrd are kept
beside it so QEMU can start it directly. The image is built once and cached; guests boot it with
`-snapshot`, so a test never changes the cached copy.
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


@dataclass(frozen=True)
class DebianGuest:
    """The cached guest: root image, and the kernel and initrd from its /boot."""

    image: Path
    kernel: Path
    initrd: Path

    @property
    def version(self) -> str:
        """The kernel release, as in /boot/vmlinuz-<version>."""
        return self.kernel.name.removeprefix("vmlinuz-")


def debian_guest(arch: str = "amd64") -> DebianGuest:
    """The guest for `arch`, debootstrapped and imaged on first use (minutes), then cached."""
    # A change to what goes into the guest names a new cache entry.
    recipe = hashlib.sha256(repr((PACKAGES, SETUP, initramfs.CONSOLE_LOOP)).encode()).hexdigest()[:12]
    folder = cache_dir() / "vm" / f"debian-guest-{SUITE}-{arch}-{recipe}"
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=folder.name, dir=folder.parent))
        try:
            _build(partial, arch)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        partial.rename(folder)
    (kernel,) = folder.glob("vmlinuz-*")
    (initrd,) = folder.glob("initrd.img-*")
    return DebianGuest(image=folder / "root.ext4", kernel=kernel, initrd=initrd)


def _build(into: Path, arch: str) -> None:
    tree = into / "tree"
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--arch={arch}", f"--include={','.join(PACKAGES)}",
         SUITE, str(tree), host_archives()[0].uri],
        check=True, capture_output=True,
    )
    for deb in (tree / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    init = tree / INIT.lstrip("/")
    init.write_text(initramfs.init_script(SETUP))
    init.chmod(0o755)
    for pattern in ("vmlinuz-*", "initrd.img-*"):
        (found,) = (tree / "boot").glob(pattern)
        shutil.copyfile(found, into / found.name)
    make_ext4(tree, into / "root.ext4")
    shutil.rmtree(tree)


def drives(guest: DebianGuest, files: Path, scratch: Path) -> list[str]:
    """QEMU options for the guest's root (a snapshot: the cached image never changes) and `files` on /dev/vdb (/mnt)."""
    return [
        "-snapshot",
        "-drive", f"file={guest.image},if=virtio,format=raw",
        "-drive", f"file={make_ext4(files, scratch / f'{files.name}.ext4')},if=virtio,format=raw",
    ]


def make_ext4(tree: Path, image: Path) -> Path:
    """An ext4 image holding `tree`, with room to spare for what the guest writes."""
    used_kib = int(subprocess.run(["du", "-sk", str(tree)], capture_output=True, text=True, check=True).stdout.split()[0])
    size_mib = used_kib * 13 // 10 // 1024 + 64
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(image), f"{size_mib}M"], check=True, capture_output=True)
    return image


def start_with_wheel(start: Callable[..., Machine], folder: Path, *, cmdline: str = "",
                     qemu_options: Sequence[str] = ()) -> tuple[Machine, str]:
    """The amd64 guest under `-snapshot` with the x86_64 wheel on a second disk at /mnt, started by
    `start(target, kernel=, initrd=, cmdline=, qemu_options=)` (the tests' `vm.start`, or
    `start_logged`); returns the machine at its prompt and the wheel's file name."""
    guest = debian_guest()
    wheels = folder / "wheels"
    wheels.mkdir()
    wheel = Path(shutil.copy(wheel_for("x86_64"), wheels))
    machine = start(
        "x86_64",
        kernel=guest.kernel,
        initrd=guest.initrd,
        cmdline=f"root=/dev/vda ro init={INIT} quiet {cmdline}".strip(),
        qemu_options=[*drives(guest, wheels, folder), *qemu_options],
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
