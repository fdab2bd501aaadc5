"""ISO images for proving and measuring `kexec-bin iso`: real ones from Debian packages, and Linux
images built here the way distributions build theirs (grub-mkrescue, xorriso with isolinux) around
Debian's installer.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from ..errors import ProveError
from . import debian_packages

# Debian's netboot installer of one architecture: its tree holds the kernel, the initrd and the
# installer's own syslinux menus (boot-screens/*.cfg, amd64 only).
INSTALLER = "debian-installer-12-netboot-{arch}"
INSTALLER_TREE = "usr/lib/debian-installer/images/12/{arch}/text"
# Where Debian's own CDs keep the installer, per architecture.
INSTALL_FOLDERS = {"amd64": "install.amd", "arm64": "install.a64"}
# grub-mkrescue's platform for an architecture the host's GRUB was not built for (None: the host's own).
GRUB_PLATFORMS: dict[str, tuple[str, str] | None] = {"amd64": None, "arm64": ("grub-efi-arm64-bin", "arm64-efi")}
# Images Debian ships in packages, and where.
PACKAGED = {
    "grub-rescue-pc": "usr/lib/grub-rescue/grub-rescue-cdrom.iso",
    "ipxe": "usr/lib/ipxe/ipxe.iso",
    "memtest86+": "usr/lib/memtest86+/memtest86+x64.iso",
}
ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
LDLINUX = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")

# GRUB's loopback.cfg convention, as Debian live and Ubuntu write it: the image's path arrives as iso_path.
# ({folder}: the installer's folder, INSTALL_FOLDERS.)
LOOPBACK_CFG = """\
menuentry "Install from the image file" {{
\tlinux /{folder}/vmlinuz priority=low iso-scan/filename=${{iso_path}}
\tinitrd /{folder}/initrd.gz
}}
"""
GRUB_CFG = """\
set timeout=5
if [ x$feature_default_font_path = xy ] ; then
   font=unicode
else
   font=$prefix/font.pf2
fi
set kernel=/{folder}/vmlinuz
menuentry "Install" {{
\tlinux $kernel priority=low
\tinitrd /{folder}/initrd.gz
}}
"""
# isolinux starts in its own folder and reads the installer's real menus from there.
ISOLINUX_CFG = "include debian-installer/amd64/pxelinux.cfg/default\n"


def missing_tools() -> str:
    """Why images cannot be built here ("" when they can): the programs and files scripts/setup --test installs."""
    missing = [program for program in ("xorriso", "grub-mkrescue") if shutil.which(program) is None]
    missing += [str(path) for path in (ISOLINUX_BIN, LDLINUX) if not path.exists()]
    return f"{', '.join(missing)} not installed (scripts/setup --test installs them)" if missing else ""


def packaged(package: str) -> Path:
    """The ISO image Debian's `package` ships, unpacked from the package (not installed)."""
    return debian_packages.unpacked(package) / PACKAGED[package]


def installer_tree(arch: str = "amd64") -> Path:
    package = INSTALLER.format(arch=arch)
    return debian_packages.unpacked(package, arch) / INSTALLER_TREE.format(arch=arch)


def installer_images(arch: str = "amd64") -> Path:
    """The folder holding the installer's `linux` and `initrd.gz` for `arch`."""
    return installer_tree(arch) / "debian-installer" / arch


def loopback_image(folder: Path, padding: int = 0, arch: str = "amd64") -> Path:
    """A grub-mkrescue image (Debian live and Ubuntu's layout): loopback.cfg and grub.cfg, `arch`'s installer.

    `padding` bytes of a file stored before the kernel make the image as large as a live system's.
    """
    tree = folder / "loopback-tree"
    install = INSTALL_FOLDERS[arch]
    (tree / "boot/grub").mkdir(parents=True)
    (tree / install).mkdir()
    if padding:
        with open(tree / "filesystem.squashfs", "wb") as file:
            file.truncate(padding)
    shutil.copyfile(installer_images(arch) / "linux", tree / install / "vmlinuz")
    shutil.copyfile(installer_images(arch) / "initrd.gz", tree / install / "initrd.gz")
    (tree / "boot/grub/loopback.cfg").write_text(LOOPBACK_CFG.format(folder=install))
    (tree / "boot/grub/grub.cfg").write_text(GRUB_CFG.format(folder=install))
    image = folder / "loopback.iso"
    modules = []
    platform = GRUB_PLATFORMS[arch]
    if platform:  # another architecture's GRUB comes from its Debian package, unpacked (not installed)
        package, name = platform
        modules = ["-d", str(debian_packages.unpacked(package, arch) / "usr/lib/grub" / name)]
    _run(["grub-mkrescue", *modules, "-o", str(image), str(tree)])
    shutil.rmtree(tree)
    return image


def isolinux_image(folder: Path) -> Path:
    """An isolinux-only image (the older Debian and Red Hat layout) with the installer's own syslinux menus."""
    tree = folder / "isolinux-tree"
    shutil.copytree(installer_tree(), tree, symlinks=True)
    shutil.copyfile(ISOLINUX_BIN, tree / "isolinux.bin")
    shutil.copyfile(LDLINUX, tree / "ldlinux.c32")
    (tree / "isolinux.cfg").write_text(ISOLINUX_CFG)
    image = folder / "isolinux.iso"
    _run(
        [
            "xorriso",
            "-as",
            "mkisofs",
            "-R",
            "-J",
            "-b",
            "isolinux.bin",
            "-c",
            "boot.cat",
            "-no-emul-boot",
            "-boot-load-size",
            "4",
            "-boot-info-table",
            "-o",
            str(image),
            str(tree),
        ]
    )
    return image


def config_image(folder: Path, name: str, files: dict[str, str | bytes], names: Sequence[str] = ("-R", "-J")) -> Path:
    """An image holding `files` (path → content), for configs a test writes itself.

    `names`: mkisofs's options for the names beside ISO 9660's own (Rock Ridge -R, Joliet -J; none: 8.3 names).
    """
    tree = folder / f"{name}-tree"
    for path, content in files.items():
        target = tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    image = folder / f"{name}.iso"
    _run(["xorriso", "-as", "mkisofs", *names, "-o", str(image), str(tree)])
    return image


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ProveError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
