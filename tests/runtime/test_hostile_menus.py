"""Boot menus and images that attack the reader (issue 17): expansion bombs, include fan-out, deep submenus,
huge trees, FIFOs, odd names and paths. Each must end in a one-line refusal or a right answer, within
bounded memory and time, with nothing loaded (the only kexec on PATH is coreutils' echo)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import kexec_bin
from kexec_bin.cli import main
from kexec_build.testbed import iso_images

from .kernel_trees import install_kernel, package_tree
from .measure import run_measured

# The kexec_bin under test (PYTHONPATH may name another checkout) runs in each measured process.
SOURCE = str(Path(kexec_bin.__file__).parents[1])
CAP_MIB = 64
BOMB = "set a=xxxxxxxxxxxxxxxx\n" + 'set a="$a$a"\n' * 40 + "menuentry a { linux /vmlinuz $a }\n"


@pytest.fixture(scope="module")
def kexec_bin_iso(tmp_path_factory):
    """Run `kexec-bin iso` measured, with a kexec that exits at once as the only one: nothing can be loaded."""
    harmless = tmp_path_factory.mktemp("harmless")
    (harmless / "kexec").write_text("#!/bin/sh\nexit 0\n")
    (harmless / "kexec").chmod(0o755)

    def run(*args, timeout: float = 60, env: dict | None = None):
        command = [sys.executable, "-m", "kexec_bin", "iso", *map(str, args)]
        # The menus and images are the subject here, not this host's kernel (which may refuse kexec: test_plan_core).
        environment = {
            "PATH": f"{harmless}:/usr/bin:/bin",
            "PYTHONPATH": SOURCE,
            "KEXEC_BIN_NO_CHECK": "1",
            **(env or {}),
        }
        return run_measured(command, timeout=timeout, env=environment)

    return run


def refused(result, message: str) -> None:
    assert result.returncode == 1, result
    assert message in result.stderr, result.stderr
    assert result.stderr.startswith("kexec-bin: ") and result.stderr.count("\n") == 1, result.stderr
    assert "plan:" not in result.stdout
    assert result.peak_mib < CAP_MIB, result


def test_a_variable_that_doubles_is_refused_in_bounded_memory(kexec_bin_iso, images):
    assert len(BOMB.encode()) < 600  # the red team's 580-byte loopback.cfg
    image = iso_images.config_image(images, "bomb", {"boot/grub/loopback.cfg": BOMB, "vmlinuz": b"kernel"})
    refused(
        kexec_bin_iso(image, "--list"),
        "/boot/grub/loopback.cfg: the boot menus expand a word to more than 64 KiB",
    )


def _fan_out(folder: str, line: str, extension: str) -> dict[str, str | bytes]:
    """14 files deep, each including the next one 10 times: 10**14 readings within the depth rule."""
    files: dict[str, str | bytes] = {}
    for level in range(14):
        files[f"{folder}/f{level}.{extension}"] = (line.format(f"{folder}/f{level + 1}.{extension}") + "\n") * 10
    return files


def test_grub_source_fan_out_is_refused(kexec_bin_iso, images):
    files = _fan_out("boot/grub", "source /{}", "cfg")
    files["boot/grub/grub.cfg"] = "source /boot/grub/f0.cfg\n"
    image = iso_images.config_image(images, "fan-out-grub", files)
    refused(kexec_bin_iso(image, "--list"), "the boot menus read more than 64 config files (an include fan-out?)")


def test_syslinux_include_fan_out_is_refused(kexec_bin_iso, images):
    files = _fan_out("isolinux", "include /{}", "cfg")
    files["isolinux/isolinux.cfg"] = "include /isolinux/f0.cfg\n"
    image = iso_images.config_image(images, "fan-out-syslinux", files)
    refused(kexec_bin_iso(image, "--list"), "the boot menus read more than 64 config files (an include fan-out?)")


def test_a_megabyte_of_nested_submenus_is_refused(kexec_bin_iso, images):
    nested = "submenu a {\n" * ((1 << 20) // 12)
    image = iso_images.config_image(images, "nested", {"boot/grub/grub.cfg": nested})
    refused(kexec_bin_iso(image, "--list"), "/boot/grub/grub.cfg: the boot menus nest submenus deeper than 32")


def test_an_image_of_sixty_thousand_files_is_listed_in_bounded_memory(kexec_bin_iso, images):
    tree = images / "many-tree"
    (tree / "boot/grub").mkdir(parents=True)
    (tree / "boot/grub/grub.cfg").write_text('menuentry "Many" {\n linux /vmlinuz\n}\n')
    (tree / "vmlinuz").write_bytes(b"kernel")
    (images / "empty").touch()
    # 60,000 names in the image for one empty file on disk (xorriso's graft points), in 60 folders.
    names = [
        f"d{folder}/file-with-a-long-name-{name}.dat={images / 'empty'}" for folder in range(60) for name in range(1000)
    ]
    (images / "many.list").write_text("\n".join([f"/={tree}", *names]) + "\n")
    image = images / "many.iso"
    subprocess.run(
        [
            "xorriso",
            "-as",
            "mkisofs",
            "-R",
            "-J",
            "-graft-points",
            "-path-list",
            str(images / "many.list"),
            "-o",
            str(image),
        ],
        check=True,
        capture_output=True,
    )
    result = kexec_bin_iso(image, "--list")
    assert result.returncode == 0, result.stderr
    assert "1. Many\n   kernel:  /vmlinuz" in result.stdout
    assert result.peak_mib < CAP_MIB, result


def test_an_image_that_is_a_fifo_is_refused_at_once(kexec_bin_iso, tmp_path):
    fifo = tmp_path / "image.iso"
    os.mkfifo(fifo)
    refused(kexec_bin_iso(fifo, "--list", timeout=20), f"{fifo}: a FIFO, not an ISO image file or a block device")


def test_a_block_device_image_is_read(kexec_bin_iso, images, tmp_path):
    # Booted from a disc, GRUB reads grub.cfg: loopback.cfg is for an image booted as a file.
    files: dict[str, str | bytes] = {
        "boot/grub/grub.cfg": 'menuentry "Disc" {\n linux /vmlinuz boot=live\n}\n',
        "boot/grub/loopback.cfg": 'menuentry "File" {\n linux /vmlinuz boot=live findiso=${iso_path}\n}\n',
        "vmlinuz": b"kernel",
    }
    image = iso_images.config_image(images, "device", files)
    attached = subprocess.run(
        ["losetup", "--find", "--show", "--read-only", str(image)], capture_output=True, text=True
    )
    if attached.returncode != 0:
        pytest.skip(f"no loop device to hold the image as a block device: {attached.stderr.strip()}")
    device = attached.stdout.strip()
    try:
        listing = kexec_bin_iso(device, "--list")
        plan = kexec_bin_iso(device, "--console", "none")
    finally:
        subprocess.run(["losetup", "--detach", device], check=True)
    assert listing.returncode == 0, listing.stderr
    assert "1. Disc\n   kernel:  /vmlinuz" in listing.stdout
    assert plan.returncode == 0, plan.stderr
    assert "command line: boot=live panic=30\n" in plan.stdout
    assert f"image path: none added ({device} is a disc, which the live system finds itself)" in plan.stdout


def test_a_config_name_that_is_not_utf8_is_no_internal_error(kexec_bin_iso, images):
    tree = images / "latin1-tree"
    (tree / "isolinux").mkdir(parents=True)
    (tree / "isolinux/isolinux.cfg").write_bytes(b"include men\xfc.cfg\nlabel linux\n kernel /vmlinuz\n")
    (tree / "isolinux").joinpath(os.fsdecode(b"men\xfc.cfg")).write_bytes(b"label other\n kernel /vmlinuz\n")
    (tree / "vmlinuz").write_bytes(b"kernel")
    image = images / "latin1.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-R", "-o", str(image), str(tree)], check=True, capture_output=True)
    result = kexec_bin_iso(image, "--list")
    assert result.returncode == 0, result.stderr
    assert ". linux\n" in result.stdout


def test_thousand_initrds_are_refused_before_anything_is_extracted(kexec_bin_iso, images):
    config = 'menuentry "Fill" {\n linux /vmlinuz\n initrd' + " /big" * 1000 + "\n}\n"
    image = iso_images.config_image(
        images, "initrds", {"boot/grub/grub.cfg": config, "vmlinuz": b"kernel", "big": bytes(8 << 20)}
    )
    refused(kexec_bin_iso(image, "--console", "none"), "entry 1 names 1000 initrds; kexec-bin loads at most 32")


@pytest.fixture
def small_tmpdir(tmp_path):
    """A 1 MiB tmpfs, for TMPDIR."""
    scratch = tmp_path / "small"
    scratch.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(scratch)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield scratch
    subprocess.run(["umount", str(scratch)], check=True)


def _image_with_a_big_initrd(images):
    return iso_images.config_image(
        images,
        "larger",
        {
            "boot/grub/grub.cfg": 'menuentry "Big" {\n linux /vmlinuz\n initrd /big\n}\n',
            "vmlinuz": b"kernel",
            "big": bytes(4 << 20),
        },
    )


def test_an_entry_larger_than_the_free_space_is_refused_before_extracting(kexec_bin_iso, images, small_tmpdir):
    image = _image_with_a_big_initrd(images)
    result = kexec_bin_iso(image, "--console", "none", "--load-only", env={"TMPDIR": str(small_tmpdir)})
    refused(result, f"entry 1's files need 4.0 MiB and {small_tmpdir} has")
    assert os.listdir(small_tmpdir) == []


def test_a_dry_run_extracts_the_kernel_only(kexec_bin_iso, images, small_tmpdir):
    # The 4 MiB initrd would not fit the 1 MiB TMPDIR: a plan that only shows it writes none of it.
    image = _image_with_a_big_initrd(images)
    result = kexec_bin_iso(image, "--console", "none", env={"TMPDIR": str(small_tmpdir)})
    assert result.returncode == 0, result
    assert "initrd  (written for the load, from " in result.stdout
    assert "checked: not extracted for a dry run: 4194304 bytes, the size its directory record gives" in result.stdout
    assert os.listdir(small_tmpdir) == []


@pytest.mark.parametrize(
    ("folder", "name"), [("isos", "ubuntu (1).iso"), ("a init=", "live.iso"), ("isos", "tab\there.iso")]
)
def test_an_image_path_the_live_system_would_split_is_refused(kexec_bin_iso, images, tmp_path, folder, name):
    config = 'menuentry "Live" {\n linux /vmlinuz boot=live\n}\n'
    built = iso_images.config_image(images, "live-path", {"boot/grub/grub.cfg": config, "vmlinuz": b"kernel"})
    image = tmp_path / folder / name
    image.parent.mkdir()
    image.write_bytes(built.read_bytes())
    result = kexec_bin_iso(image, "--console", "none")
    refused(result, "the booted live system would not find its image at this path")
    assert repr(name)[1:-1] in result.stderr


def test_entry_by_syslinux_label(kexec_bin_iso, images):
    image = iso_images.isolinux_image(images)
    result = kexec_bin_iso(image, "--entry", "expert", "--console", "none")
    assert result.returncode == 0, result.stderr
    assert f"plan: Advanced options > Expert install from {image}" in result.stdout


# The host's menus, under --root.


@pytest.fixture
def machine(tree):
    release = install_kernel(tree.root, package_tree("bookworm"))
    return tree, release


def reboot(tree, capsys, *args):
    code = main(["reboot", "--root", str(tree.root), *args])
    return code, capsys.readouterr()


@pytest.mark.parametrize("path", ["boot/grub/grub.cfg", "boot/grub/grubenv", "KERNEL", "INITRD"])
@pytest.mark.usefixtures("recording_kexec")
def test_a_fifo_in_the_host_menus_or_files_is_refused(machine, capsys, path):
    tree, release = machine
    (tree.root / "boot/grub").mkdir(parents=True, exist_ok=True)
    entry = f"menuentry 'D' {{\n linux /boot/vmlinuz-{release}\n initrd /boot/initrd.img-{release}\n}}\n"
    (tree.root / "boot/grub/grub.cfg").write_text(entry)
    path = path.replace("KERNEL", f"boot/vmlinuz-{release}").replace("INITRD", f"boot/initrd.img-{release}")
    target = tree.root / path
    target.unlink(missing_ok=True)
    os.mkfifo(target)
    code, out = reboot(tree, capsys)
    assert code == 1, out
    assert f"{path.rsplit('/', 1)[-1]}" in out.err and "a FIFO" in out.err, out.err
    assert out.err.count("\n") == 1


@pytest.mark.usefixtures("recording_kexec")
def test_a_dangling_kernel_link_is_passed_over(machine, capsys):
    tree, release = machine
    (tree.root / "boot/vmlinuz-9.9.9-gone-amd64").symlink_to("/nowhere/vmlinuz")
    code, out = reboot(tree, capsys)
    assert code == 0, out.err
    assert f"plan: reboot into {release}" in out.out
    assert "skipped /boot/vmlinuz-9.9.9-gone-amd64 and /boot/vmlinux-9.9.9-gone-amd64: not a file" in out.out


@pytest.mark.usefixtures("recording_kexec")
def test_a_quoted_boot_image_with_a_space_is_dropped_whole(machine, capsys):
    tree, _release = machine
    tree.write("/proc/cmdline", 'BOOT_IMAGE="/boot/vmlinuz 6" root=/dev/sda1 ro quiet\n')
    code, out = reboot(tree, capsys)
    assert code == 0, out.err
    assert "command line: root=/dev/sda1 ro quiet panic=30\n" in out.out
    assert 'without BOOT_IMAGE="/boot/vmlinuz 6"' in out.out


@pytest.mark.usefixtures("recording_kexec")
def test_host_grub_runs_its_script_next_entry_then_saved_entry(machine, capsys):
    # grub-mkconfig's header: load_env, then next_entry (grub-reboot) wins over saved_entry (grub-set-default).
    tree, release = machine
    header = (
        "if [ -s $prefix/grubenv ]; then\n load_env\nfi\n"
        'if [ "${next_entry}" ] ; then\n set default="${next_entry}"\nelse\n set default="${saved_entry}"\nfi\n'
        "function savedefault {\n saved_entry=${chosen}\n}\n"
    )
    entries = "".join(
        f'menuentry "{title}" --id {title} {{\n linux /boot/vmlinuz-{release} {title}=1\n'
        f" initrd /boot/initrd.img-{release}\n}}\n"
        for title in ("first", "second", "third")
    )
    tree.write("/boot/grub/grub.cfg", header + entries)
    tree.write("/boot/grub/grubenv", "# GRUB Environment Block\nsaved_entry=second\nnext_entry=third\n")
    code, out = reboot(tree, capsys)
    assert code == 0, out.err
    assert "kernel: GRUB default entry 'third' in /boot/grub/grub.cfg (grubenv's next_entry" in out.out
    tree.write("/boot/grub/grubenv", "# GRUB Environment Block\nsaved_entry=second\n")
    code, out = reboot(tree, capsys)
    assert "kernel: GRUB default entry 'second' in /boot/grub/grub.cfg (grubenv's saved_entry" in out.out


def test_a_fifo_as_mountinfo_under_root_is_no_hang(kexec_bin_iso, images, tmp_path):
    config = 'menuentry "Live" {\n linux /vmlinuz boot=live\n}\n'
    image = iso_images.config_image(images, "live-mounts", {"boot/grub/grub.cfg": config, "vmlinuz": b"kernel"})
    root = tmp_path / "root"
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/cmdline").write_text("ro\n")
    os.mkfifo(root / "proc/self/mountinfo")
    result = kexec_bin_iso(image, "--console", "none", "--root", root, timeout=20)
    assert result.returncode == 0, result
    assert "plan: Live from" in result.stdout


def test_images_are_read_with_the_standard_library_alone(images):
    # -S: no site-packages (no pycdlib, which parsed the whole directory tree on open): kexec_bin and the stdlib.
    image = iso_images.config_image(
        images, "stdlib", {"boot/grub/grub.cfg": 'menuentry "S" {\n linux /vmlinuz\n}\n', "vmlinuz": b"kernel"}
    )
    listing = subprocess.run(
        [sys.executable, "-S", "-m", "kexec_bin", "iso", str(image), "--list"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SOURCE},
    )
    assert listing.returncode == 0, listing.stderr
    assert "1. S\n   kernel:  /vmlinuz" in listing.stdout


@pytest.mark.skipif(os.uname().machine not in ("x86_64", "i686"), reason="memdisk runs on x86 machines only")
def test_memdisk_weighs_a_disc_by_its_end_not_its_file_size(kexec_bin_iso, tmp_path):
    memdisk = Path("/usr/lib/syslinux/memdisk")
    if not memdisk.exists():
        pytest.skip("syslinux-common's memdisk not installed (scripts/setup --test installs it)")
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/meminfo").write_text("MemTotal: 2048 kB\nMemAvailable: 100 kB\n")
    (root / "usr/lib/syslinux").mkdir(parents=True)
    (root / "usr/lib/syslinux/memdisk").write_bytes(memdisk.read_bytes())
    attached = subprocess.run(
        ["losetup", "--find", "--show", "--read-only", str(iso_images.packaged("ipxe"))], capture_output=True, text=True
    )
    if attached.returncode != 0:
        pytest.skip(f"no loop device to hold the image as a block device: {attached.stderr.strip()}")
    device = attached.stdout.strip()
    try:
        result = kexec_bin_iso(device, "--memdisk", "--root", root)
    finally:
        subprocess.run(["losetup", "--detach", device], check=True)
    refused(result, f"--memdisk: {device} is ")
    assert "and only 0.1 MiB of memory is available" in result.stderr


@pytest.mark.usefixtures("recording_kexec")
@pytest.mark.parametrize(("firmware", "chosen"), [("efi", "A"), ("pc", "B")])
def test_host_grub_counts_only_the_entries_its_platform_shows(machine, capsys, firmware, chosen):
    # grub-mkconfig puts firmware-setup and memtest entries inside `if [ "$grub_platform" = … ]`.
    tree, release = machine
    if firmware == "pc":
        tree.remove("/sys/firmware/efi")
    files = f" {{\n linux /boot/vmlinuz-{release}\n initrd /boot/initrd.img-{release}\n}}\n"
    tree.write(
        "/boot/grub/grub.cfg",
        "set default=1\n"
        'if [ "$grub_platform" = "efi" ]; then\n menuentry "UEFI Firmware Settings" {\n  fwsetup\n }\nfi\n'
        f"menuentry 'A'{files}menuentry 'B'{files}",
    )
    code, out = reboot(tree, capsys)
    assert code == 0, out.err
    assert f"kernel: GRUB default entry '{chosen}' in /boot/grub/grub.cfg (grub.cfg's set default=)" in out.out
