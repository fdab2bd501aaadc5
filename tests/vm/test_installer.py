"""The classic scenario: from a running kernel, kexec into the Debian installer on the serial console."""

from __future__ import annotations

import pytest

from kexec_build.testbed import debian_packages
from kexec_build.vm.guests import INSTALLER_MAIN_MENU, INSTALLER_SECONDS

pytestmark = pytest.mark.vm

INSTALLER = "debian-installer-12-netboot-amd64"
IMAGES = "usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64"


def test_kexec_into_the_debian_installer_reaches_its_main_menu(vm):
    images = debian_packages.unpacked(INSTALLER, "amd64") / IMAGES
    machine = vm.boot("x86_64", files={"di/linux": images / "linux", "di/initrd.gz": images / "initrd.gz"})
    machine.run('kexec --load /di/linux --initrd=/di/initrd.gz --command-line="console=ttyS0 priority=low"')
    machine.send("kexec --exec")
    machine.expect(INSTALLER_MAIN_MENU, INSTALLER_SECONDS)
