"""The kernel image check behind `kexec-bin reboot --kernel`, on Debian's own kernels."""

from __future__ import annotations

import gzip

import pytest

from kexec_bin.image import identify
from kexec_build.testbed.debian_packages import unpacked

pytestmark = pytest.mark.network  # Debian's kernels, downloaded into an empty cache


def debian_vmlinuz(arch: str):
    (image,) = (unpacked(f"linux-image-{arch}", arch) / "boot").glob("vmlinuz-*")
    return image


def test_x86_bzimage_names_its_release():
    image = debian_vmlinuz("amd64")
    found = identify(str(image))
    assert found is not None
    assert found.format.startswith("x86 bzImage (boot protocol 2.")
    assert found.release == image.name.removeprefix("vmlinuz-")


def test_arm64_image():
    found = identify(str(debian_vmlinuz("arm64")))
    assert found is not None and found.format == "arm64 Image"


def test_compressed_vmlinuz(tmp_path):
    packed = tmp_path / "vmlinuz"
    packed.write_bytes(gzip.compress(debian_vmlinuz("arm64").read_bytes()[: 1 << 20]))
    found = identify(str(packed))
    assert found is not None and found.format.startswith("gzip-compressed")


@pytest.mark.parametrize("name", ["config", "System.map"])
def test_files_beside_a_kernel_are_not_kernels(name):
    (path,) = (unpacked("linux-image-amd64", "amd64") / "boot").glob(f"{name}-*")
    assert identify(str(path)) is None
