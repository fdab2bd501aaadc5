"""The remote-reinstall story: a plain Debian guest without kexec-tools pip installs the wheel, and
`kexec-bin netboot debian --yes` takes it into the Debian installer on its serial console.

The mirror is a loopback server on the host (10.0.2.2 from inside QEMU's user network) holding the
archive's real signed InRelease and SHA256SUMS and Debian's own netboot kernel and initrd.
"""

from __future__ import annotations

import pytest

from kexec_build import netboot_mirror
from kexec_build.vm.debian_guest import start_with_wheel
from tests.vm.test_guest_story import PIP_SECONDS
from tests.vm.test_installer import INSTALLER_SECONDS, MAIN_MENU

pytestmark = pytest.mark.vm

# QEMU's user network: the guest's address, the host's side, and its DNS proxy.
GUEST_ADDRESS, HOST_SIDE, DNS = "10.0.2.15", "10.0.2.2", "10.0.2.3"
# Download (about 40 MB through QEMU's user network), gpgv and two sha256 sums, under TCG.
NETBOOT_SECONDS = 600


def test_netboot_from_the_pip_installed_wheel_reaches_the_installers_main_menu(vm, tmp_path, httpserver):
    for path, data in netboot_mirror.files("bookworm", "amd64").items():
        httpserver.expect_request(f"/debian/{path}").respond_with_data(data, content_type="application/octet-stream")
    machine, wheel = start_with_wheel(vm, tmp_path, qemu_options=["-nic", "user,model=virtio-net-pci"])
    assert machine.run("command -v kexec || echo absent") == "absent"
    # A server's static address, set by hand as an administrator would (no DHCP client in the guest).
    machine.run("modprobe virtio_net")
    # The initramfs's udev named the NIC (ens3, enp0s3…): the one link that is not loopback.
    (nic,) = [name for name in machine.run("ls /sys/class/net").split() if name != "lo"]
    machine.run(f"ip link set {nic} up && ip addr add {GUEST_ADDRESS}/24 dev {nic} && "
                f"ip route add default via {HOST_SIDE} && echo 'nameserver {DNS}' > /etc/resolv.conf")
    machine.run(f"pip install --no-index --break-system-packages /mnt/{wheel}", PIP_SECONDS)

    machine.send(f"kexec-bin netboot debian --mirror http://{HOST_SIDE}:{httpserver.port}/debian --release bookworm "
                 "--append priority=low --yes --exec-after 1")
    plan = machine.expect(r"(?s)plan: Debian 12\.\d+ \(bookworm\) installer, netboot, amd64.*?booting: [^\n]*\n",
                          NETBOOT_SECONDS).group()
    assert "good signature by" in plan and "(keyring /usr/share/keyrings/debian-archive-keyring.gpg)" in plan
    assert f"network: static {GUEST_ADDRESS}/24 via {HOST_SIDE} on {nic}, DNS {DNS}" in plan
    assert f"command line: console=ttyS0 netcfg/choose_interface={nic}" in plan
    assert "loaded with" in plan and "(bundled)" in plan
    assert "booting: no systemd; sync, remount every filesystem read-only, then kexec -e" in plan
    machine.expect(MAIN_MENU, INSTALLER_SECONDS)
