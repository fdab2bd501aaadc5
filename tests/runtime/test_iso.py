"""`kexec-bin iso`: boot entries of real images (Debian's packaged ones, and Linux images built with the
distributions' own tools), the plan for an entry or for memdisk, and every refusal."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from kexec_bin.errors import PlanError
from kexec_bin.stories import iso
from kexec_build.testbed import iso_images
from kexec_build.vm.binaries import wheel_for
from tests.runtime.installed import install
from tests.wheel.wheel_files import member

HOST_MEMDISK = Path("/") / iso.MEMDISK


@pytest.fixture(scope="module")
def loopback_iso(images) -> Path:
    return iso_images.loopback_image(images)


@pytest.fixture(scope="module")
def isolinux_iso(images) -> Path:
    return iso_images.isolinux_image(images)


@pytest.fixture(scope="module")
def kexec_bin_iso(tmp_path_factory):
    """Run `kexec-bin iso` installed: the package alone (its image reader is stdlib), coreutils' echo as kexec."""
    return _runner(_installed(tmp_path_factory.mktemp("installed")))


def _installed(folder: Path):
    return install(folder, Path("/bin/echo"))


def _runner(wheel):
    def run(*args, env=None):
        return subprocess.run(
            [str(wheel.kexec_bin), "iso", *map(str, args)],
            capture_output=True,
            text=True,
            # The plans are the subject here, not this host's kernel (which may refuse kexec: test_plan_core).
            env={"PATH": "/usr/bin:/bin", "KEXEC_BIN_NO_CHECK": "1", **(env or {})},
        )

    return run


def _refused(result, message: str) -> None:
    assert result.returncode == 1, result
    assert result.stdout == "" or "plan:" not in result.stdout, result.stdout
    assert message in result.stderr, result.stderr
    assert result.stderr.startswith("kexec-bin: ") and result.stderr.count("\n") == 1, result.stderr


def test_list_of_a_loopback_image_passes_its_path_as_iso_path(kexec_bin_iso, loopback_iso):
    result = kexec_bin_iso(loopback_iso, "--list")
    assert result.returncode == 0, result.stderr
    on_its_filesystem = iso.image_path_on_its_filesystem(str(loopback_iso))
    assert result.stdout.splitlines() == [
        "1. Install from the image file",
        "   kernel:  /install.amd/vmlinuz",
        "   initrd:  /install.amd/initrd.gz",
        f"   cmdline: priority=low iso-scan/filename={on_its_filesystem}",
        "   from:    /boot/grub/loopback.cfg",
    ]


def test_grub_cfg_is_read_when_there_is_no_loopback_cfg(kexec_bin_iso, images):
    image = iso_images.config_image(
        images,
        "grub-only",
        {
            "boot/grub/grub.cfg": iso_images.GRUB_CFG.format(folder="install.amd"),
            "install.amd/vmlinuz": b"kernel",
            "install.amd/initrd.gz": b"initrd",
        },
    )
    result = kexec_bin_iso(image, "--list")
    assert result.returncode == 0, result.stderr
    assert "1. Install\n   kernel:  /install.amd/vmlinuz\n" in result.stdout  # `linux $kernel`, expanded
    assert "from:    /boot/grub/grub.cfg" in result.stdout


def test_list_of_an_isolinux_image_follows_the_installers_includes(kexec_bin_iso, isolinux_iso):
    result = kexec_bin_iso(isolinux_iso, "--list")
    assert result.returncode == 0, result.stderr
    titles = [line for line in result.stdout.splitlines() if line[:1].isdigit()]
    # syslinux reads adtxt.cfg's `include rqtxt.cfg` where it stands: Expert, Rescue, Automated (issue 17, item 8).
    assert titles[:4] == [
        "1. Install",
        "2. Advanced options > Expert install",
        "3. Advanced options > Rescue mode",
        "4. Advanced options > Automated install",
    ]
    assert len(titles) == 8, result.stdout  # the text-mode entries; the .c32 menus and help screens boot no kernel
    # `append ... initrd=` in the installer's txt.cfg: the initrd leaves the command line for the initrd list.
    assert (
        "1. Install\n   kernel:  /debian-installer/amd64/linux\n   initrd:  /debian-installer/amd64/initrd.gz\n"
        "   cmdline: vga=788 --- quiet\n   from:    /debian-installer/amd64/boot-screens/txt.cfg"
    ) in result.stdout


@pytest.mark.parametrize("names", [["-J"], []], ids=["joliet", "iso9660-only"])
def test_images_without_rock_ridge_are_read_by_their_other_names(kexec_bin_iso, images, names):
    # Without Rock Ridge, plain ISO 9660 names are upper case (VMLINUZ.;1): isolinux ignores case, and so do we.
    files: dict[str, str | bytes] = {
        "isolinux/isolinux.cfg": "label linux\n kernel vmlinuz\n append initrd=initrd.gz quiet\n",
        "isolinux/vmlinuz": b"kernel",
        "isolinux/initrd.gz": b"initrd",
    }
    image = iso_images.config_image(images, f"names-{'-'.join(names) or 'none'}", files, names)
    result = kexec_bin_iso(image, "--console", "none")
    assert result.returncode == 0, result.stderr
    assert f"from {image}:/isolinux/vmlinuz (entry 1, /isolinux/isolinux.cfg)" in result.stdout
    assert "checked: extracted from the image: 6 bytes" in result.stdout
    assert "command line: quiet panic=30\n" in result.stdout


@pytest.mark.network  # Debian packages, downloaded into an empty cache
def test_debians_ipxe_image_has_one_entry_with_ipxes_linux_kernel(kexec_bin_iso):
    result = kexec_bin_iso(iso_images.packaged("ipxe"), "--list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "1. ipxe.lkrn (the default: DEFAULT ipxe.lkrn in /isolinux.cfg)",
        "   kernel:  /ipxe.krn",
        "   initrd:  (none)",
    ]


def test_dry_run_plans_an_entry_chosen_by_title_with_console_and_append(kexec_bin_iso, isolinux_iso):
    kernel = iso_images.installer_images() / "linux"
    result = kexec_bin_iso(
        isolinux_iso,
        "--entry",
        "Advanced options > Expert install",
        "--console",
        "ttyS0,115200",
        "--append",
        "debconf/frontend=noninteractive",
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"plan: Advanced options > Expert install from {isolinux_iso}" in out
    assert (
        f"from {isolinux_iso}:/debian-installer/amd64/linux (entry 2, /debian-installer/amd64/boot-screens/adtxt.cfg)"
        in out
    )
    assert f"checked: extracted from the image: {kernel.stat().st_size} bytes" in out
    assert "command line: priority=low vga=788 --- console=ttyS0,115200 debconf/frontend=noninteractive" in out
    assert "image path: none added" in out
    # The files are extracted for the load only: a dry run names no path that is gone when it ends.
    assert re.search(
        r"kexec command: \S+ --load --kexec-syscall-auto '--initrd=<initrd>' "
        r"'--command-line=priority=low vga=788 [^']*' -- '<kernel>'\n",
        out,
    ), out
    assert "kexec-bin-iso-" not in out
    assert out.rstrip().endswith("dry run: nothing loaded (--load-only loads it, --yes loads and boots it)")


def test_extraction_gives_the_files_byte_for_byte(isolinux_iso, tmp_path):
    with iso.IsoImage(str(isolinux_iso)) as image:
        for name in ("linux", "initrd.gz"):
            size = image.extract(f"/debian-installer/amd64/{name}", str(tmp_path / name), name)
            original = (iso_images.installer_images() / name).read_bytes()
            assert size == len(original)
            assert (tmp_path / name).read_bytes() == original


def test_an_image_on_tmpfs_is_warned_about_when_the_entry_needs_it(kexec_bin_iso, loopback_iso):
    shm = Path("/dev/shm")
    if (
        not shm.is_dir()
        or "tmpfs" not in subprocess.run(["stat", "-f", "-c", "%T", str(shm)], capture_output=True, text=True).stdout
    ):
        pytest.skip("/dev/shm is not a tmpfs here")
    copy = shm / f"kexec-bin-test-{os.getpid()}.iso"
    shutil.copyfile(loopback_iso, copy)
    try:
        result = kexec_bin_iso(copy, "--console", "none")
    finally:
        copy.unlink()
    assert result.returncode == 0, result.stderr
    warning = f"kexec-bin: warning: {copy} is on tmpfs (/dev/shm): the booted system cannot find its image there"
    assert warning in result.stderr  # warnings go to standard error


# Refusals: each names the thing and the fix, on one line, before anything is loaded.


@pytest.mark.network  # Debian packages, downloaded into an empty cache
def test_refuses_a_file_that_is_not_an_iso(kexec_bin_iso):
    kernel = iso_images.installer_images() / "linux"
    _refused(kexec_bin_iso(kernel, "--list"), f"{kernel}: not an ISO 9660 image")


def test_refuses_a_truncated_image(kexec_bin_iso, loopback_iso, tmp_path):
    half = tmp_path / "half.iso"
    with open(loopback_iso, "rb") as source, open(half, "wb") as target:
        target.write(source.read(loopback_iso.stat().st_size // 2))
    _refused(kexec_bin_iso(half, "--list"), f"{half}: truncated: the image is")


@pytest.mark.network  # Debian packages, downloaded into an empty cache
def test_refuses_a_damaged_image(kexec_bin_iso, tmp_path):
    # Debian's ipxe.iso with its primary volume's root directory moved past the end of the image.
    damaged = tmp_path / "damaged.iso"
    content = bytearray(iso_images.packaged("ipxe").read_bytes())
    struct.pack_into("<I", content, iso.PVD_OFFSET + 156 + 2, 0x7FFFFF)
    damaged.write_bytes(content)
    _refused(kexec_bin_iso(damaged, "--list"), f"{damaged}: not a readable ISO 9660 image (")


def test_refuses_an_image_cut_inside_a_kernel(kexec_bin_iso, images, tmp_path):
    # The volume descriptor agrees with the shorter file, so only the kernel's own record shows the cut.
    image = iso_images.config_image(
        images, "cut", {"boot/grub/grub.cfg": 'menuentry "X" {\n linux /vmlinuz\n}\n', "vmlinuz": os.urandom(1 << 20)}
    )
    with iso.IsoImage(str(image)) as whole:
        found = whole.find("/vmlinuz")
        assert found is not None
        _name, record = found
        blocks = record.extent + 10
    content = bytearray(image.read_bytes()[: blocks * iso.SECTOR])
    struct.pack_into("<I", content, iso.PVD_OFFSET + 80, blocks)
    struct.pack_into(">I", content, iso.PVD_OFFSET + 84, blocks)
    cut = tmp_path / "cut.iso"
    cut.write_bytes(content)
    _refused(kexec_bin_iso(cut, "--console", "none"), f"{cut}: truncated: /vmlinuz runs past the end of the image")


@pytest.mark.network  # Debian packages, downloaded into an empty cache
def test_refuses_an_image_without_boot_configuration(kexec_bin_iso):
    memtest = iso_images.packaged("memtest86+")  # El Torito floppy and EFI programs only
    _refused(kexec_bin_iso(memtest, "--list"), f"{memtest}: no boot configuration (looked for /boot/grub/loopback.cfg")


@pytest.mark.network  # Debian packages, downloaded into an empty cache
def test_refuses_a_kernel_on_another_device(kexec_bin_iso):
    # grub-rescue-pc's grub.cfg is GRUB's sample: `set root=(hd0,msdos1)`, then `linux /vmlinuz` from that disk.
    _refused(
        kexec_bin_iso(iso_images.packaged("grub-rescue-pc"), "--list"),
        "/boot/grub/grub.cfg, entry 'GNU/Linux': '/vmlinuz' is on another device (hd0,msdos1), not in the image",
    )


@pytest.mark.parametrize(
    ("config", "line", "expected"),
    [
        (
            "boot/grub/grub.cfg",
            'menuentry "Escape" {\n linux /../../boot/vmlinuz\n}\n',
            "/boot/grub/grub.cfg, entry 'Escape': '/../../boot/vmlinuz' points outside the image",
        ),
        (
            "boot/grub/grub.cfg",
            'menuentry "Escape" {\n linux /vmlinuz\n initrd (hd0,1)/etc/shadow\n}\n',
            "/boot/grub/grub.cfg, entry 'Escape': '(hd0,1)/etc/shadow' is on another device (hd0,1)",
        ),
        (
            "boot/grub/grub.cfg",
            "source ../../../etc/grub.cfg\n",
            "/boot/grub/grub.cfg: '../../../etc/grub.cfg' points outside",
        ),
        (
            "isolinux/isolinux.cfg",
            "include ../../etc/passwd\n",
            "/isolinux/isolinux.cfg: '../../etc/passwd' points outside",
        ),
        (
            "isolinux/isolinux.cfg",
            "label x\n kernel ../../vmlinuz\n",
            "/isolinux/isolinux.cfg: '../../vmlinuz' points outside the image",
        ),
    ],
)
def test_refuses_paths_that_leave_the_image(kexec_bin_iso, images, config, line, expected):
    image = iso_images.config_image(images, f"escape-{abs(hash(line))}", {config: line, "vmlinuz": b"kernel"})
    _refused(kexec_bin_iso(image, "--list"), expected)


def test_refuses_an_entry_whose_kernel_is_missing(kexec_bin_iso, images):
    image = iso_images.config_image(
        images,
        "no-kernel",
        {"boot/grub/grub.cfg": 'menuentry "Gone" {\n linux /live/vmlinuz boot=live\n initrd /live/initrd.img\n}\n'},
    )
    assert kexec_bin_iso(image, "--list").returncode == 0  # listing reads configs only
    _refused(kexec_bin_iso(image, "--console", "none"), f"{image}: entry 1's kernel /live/vmlinuz is not in the image")


def test_refuses_an_unknown_entry(kexec_bin_iso, loopback_iso):
    _refused(
        kexec_bin_iso(loopback_iso, "--entry", "Windows"),
        f"--entry 'Windows': {loopback_iso} has no such entry; give a number from 1 to 1",
    )
    _refused(kexec_bin_iso(loopback_iso, "--entry", "2"), "--entry '2'")


# Whole-image mode.


def _root(tmp_path: Path, *, efi: bool = False, available_kib: int = 4 << 20, memdisk: bool = True) -> Path:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/meminfo").write_text(f"MemTotal: {available_kib * 2} kB\nMemAvailable: {available_kib} kB\n")
    (root / "proc/cmdline").write_text("root=/dev/sda1 console=ttyS0\n")
    if efi:
        (root / "sys/firmware/efi").mkdir(parents=True)
    if memdisk:
        if not HOST_MEMDISK.exists():
            pytest.skip("syslinux-common's memdisk not installed (scripts/setup --test installs it)")
        (root / iso.MEMDISK).parent.mkdir(parents=True)
        shutil.copyfile(HOST_MEMDISK, root / iso.MEMDISK)
    return root


@pytest.mark.network  # Debian packages, downloaded into an empty cache
@pytest.mark.skipif(os.uname().machine not in iso.X86, reason="memdisk runs on x86 machines only")
def test_memdisk_dry_run_plans_a_real_mode_kexec_load(kexec_bin_iso, tmp_path):
    ipxe = iso_images.packaged("ipxe")
    root = _root(tmp_path)
    result = kexec_bin_iso(ipxe, "--memdisk", "--root", root)
    assert result.returncode == 0, result.stderr
    assert (
        f" --load --kexec-syscall --real-mode --initrd={ipxe} '--command-line=iso raw' -- {root}/{iso.MEMDISK}\n"
        in result.stdout
    )
    # memdisk takes no panic= (the whole image's own system decides), and the plan says so.
    assert "way back: no panic=: memdisk boots a whole image" in result.stdout


@pytest.mark.network  # Debian packages, downloaded into an empty cache
@pytest.mark.skipif(os.uname().machine not in iso.X86, reason="memdisk runs on x86 machines only")
def test_memdisk_refuses_a_uefi_machine(kexec_bin_iso, tmp_path):
    _refused(
        kexec_bin_iso(iso_images.packaged("ipxe"), "--memdisk", "--root", _root(tmp_path, efi=True)),
        "--memdisk: this machine was booted by UEFI (/sys/firmware/efi exists)",
    )


@pytest.mark.network  # Debian packages, downloaded into an empty cache
def test_memdisk_refuses_a_machine_that_is_not_x86(tmp_path):
    with pytest.raises(PlanError, match="--memdisk: this machine is aarch64, and memdisk is a real-mode x86 program"):
        iso.memdisk_plan(str(iso_images.packaged("ipxe")), root=str(_root(tmp_path)), machine="aarch64")


@pytest.mark.network  # Debian packages, downloaded into an empty cache
@pytest.mark.skipif(os.uname().machine not in iso.X86, reason="memdisk runs on x86 machines only")
def test_memdisk_refuses_an_image_larger_than_available_memory(kexec_bin_iso, tmp_path):
    ipxe = iso_images.packaged("ipxe")  # 2 MiB, against 1 MiB available
    _refused(
        kexec_bin_iso(ipxe, "--memdisk", "--root", _root(tmp_path, available_kib=1024)),
        f"--memdisk: {ipxe} is 2.0 MiB and only 1.0 MiB of memory is available",
    )


@pytest.mark.network  # Debian packages, downloaded into an empty cache
@pytest.mark.skipif(os.uname().machine not in iso.X86, reason="memdisk runs on x86 machines only")
def test_memdisk_without_memdisk_names_the_package(kexec_bin_iso, tmp_path):
    root = _root(tmp_path, memdisk=False)
    _refused(
        kexec_bin_iso(iso_images.packaged("ipxe"), "--memdisk", "--root", root),
        f"--memdisk: {root}/{iso.MEMDISK} is missing, and this kexec-bin carries no memdisk (only the x86 wheels "
        "do); install it (Debian, Ubuntu: apt install syslinux-common)",
    )


@pytest.mark.build  # the x86_64 wheel, built unless dist/ holds one newer than the sources
@pytest.mark.skipif(os.uname().machine not in iso.X86, reason="memdisk runs on x86 machines only")
def test_memdisk_is_the_one_the_x86_wheel_carries_when_the_host_has_none(tmp_path):
    installed = _installed(tmp_path / "installed")
    carried = installed.site / "kexec_bin/boot/memdisk"
    carried.parent.mkdir()
    carried.write_bytes(member(wheel_for("x86_64"), "kexec_bin/boot/memdisk"))
    ipxe = iso_images.packaged("ipxe")
    result = _runner(installed)(ipxe, "--memdisk", "--root", _root(tmp_path, memdisk=False))
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(carried.read_bytes()).hexdigest()
    assert f"bundled in this wheel ({tmp_path}/root/{iso.MEMDISK} is missing)" in result.stdout
    assert f"sha256 {digest}, the one this wheel was built with (its SBOM lists it)" in result.stdout
    assert (
        f" --load --kexec-syscall --real-mode --initrd={ipxe} '--command-line=iso raw' -- {carried}\n" in result.stdout
    )


LIVE_GRUB_CFG = """\
set default={default}
if [ -e /boot/grub/extra.cfg ] ; then
    source /boot/grub/extra.cfg
fi
menuentry "Live" --id live {{
    linux /live/vmlinuz boot=live components
    initrd /live/initrd.img
}}
submenu "Advanced" {{
    menuentry "Live (safe graphics)" --id=safe {{
        linux /live/vmlinuz boot=live nomodeset
        initrd /live/initrd.img /live/firmware.img
    }}
}}
menuentry "Boot from the first disk" {{
    chainloader (hd0)+1
}}
"""
LIVE_FILES: dict[str, str | bytes] = {
    "boot/grub/extra.cfg": 'menuentry "Sourced" {\n linux /live/vmlinuz boot=live sourced\n}\n',
    "live/vmlinuz": b"kernel",
    "live/initrd.img": b"initrd",
    "live/firmware.img": b"firmware",
}


@pytest.mark.parametrize(
    ("default", "title"),
    [
        ("1", "Live"),
        ("live", "Live"),
        ("2>0", "Advanced > Live (safe graphics)"),
        ("2>safe", "Advanced > Live (safe graphics)"),
    ],
)
def test_grub_default_is_chosen_as_grub_would(kexec_bin_iso, images, default, title):
    files = {"boot/grub/grub.cfg": LIVE_GRUB_CFG.format(default=default), **LIVE_FILES}
    image = iso_images.config_image(images, f"live-{default.replace('>', '-')}", files)
    listing = kexec_bin_iso(image, "--list")
    assert f". {title} (the default: set default= {default} in /boot/grub/grub.cfg)\n" in listing.stdout
    result = kexec_bin_iso(image, "--console", "none")
    assert result.returncode == 0, result.stderr
    assert f"plan: {title} from {image}" in result.stdout
    assert (
        f"(the image's default: set default= {default} in /boot/grub/grub.cfg; --entry chooses another)"
        in result.stdout
    )


def test_grub_sources_submenus_and_initrds_of_a_live_image(kexec_bin_iso, images):
    image = iso_images.config_image(
        images, "live", {"boot/grub/grub.cfg": LIVE_GRUB_CFG.format(default=""), **LIVE_FILES}
    )
    listing = kexec_bin_iso(image, "--list")
    assert listing.returncode == 0, listing.stderr
    titles = [line for line in listing.stdout.splitlines() if line[:1].isdigit()]
    # The sourced file's entry comes first; the chainloader entry boots no Linux kernel.
    assert titles == ["1. Sourced", "2. Live", "3. Advanced > Live (safe graphics)"]
    result = kexec_bin_iso(image, "--entry", "3", "--console", "none")
    assert result.returncode == 0, result.stderr
    on_its_filesystem = iso.image_path_on_its_filesystem(str(image))
    # A live-boot entry read from grub.cfg gets the image's path the way live-boot looks for it.
    assert f"command line: boot=live nomodeset findiso={on_its_filesystem} panic=30\n" in result.stdout
    assert (
        f"image path: findiso={on_its_filesystem}, for the live system the entry boots to find its image"
        in result.stdout
    )
    # Two initrds, loaded as one file: the plan shows where they go.
    assert "initrd  " in result.stdout and result.stdout.count("  initrd  ") == 2, result.stdout
    assert "'--initrd=<initrds joined>'" in result.stdout


@pytest.mark.parametrize(
    ("mount", "expected"),
    [
        ("/ / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw", "is on /dev/mapper/vg-root (/): the booted live"),
        (
            "/ / rw,relatime shared:1 - nfs4 server:/export rw",
            "is on nfs4 (/): the booted system cannot find its image",
        ),
        ("/ / rw,relatime shared:1 - ext4 /dev/sda2 rw", None),
    ],
)
def test_reachability_follows_the_mount_that_holds_the_image(tmp_path, loopback_iso, mount, expected):
    root = tmp_path / "root"
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/mountinfo").write_text(f"22 1 0:21 {mount}\n30 22 0:5 / /proc rw - proc proc rw\n")
    warnings = iso.reachability_warnings(str(loopback_iso), str(root))
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and expected in warnings[0], warnings
