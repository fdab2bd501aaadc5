"""ISO images for proving and measuring `kexec-bin iso`: real ones from Debian packages, and Linux
images built here the way distributions build theirs (grub-mkrescue, xorriso with isolinux) around
Debian's installer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from . import debian_packages
from .errors import ProveError

INSTALLER = "debian-installer-12-netboot-amd64"
# The netboot tree: kernel, initrd and the installer's own syslinux menus (boot-screens/*.cfg).
INSTALLER_TREE = "usr/lib/debian-installer/images/12/amd64/text"
INSTALLER_IMAGES = f"{INSTALLER_TREE}/debian-installer/amd64"
# Images Debian ships in packages, and where.
PACKAGED = {
    "grub-rescue-pc": "usr/lib/grub-rescue/grub-rescue-cdrom.iso",
    "ipxe": "usr/lib/ipxe/ipxe.iso",
    "memtest86+": "usr/lib/memtest86+/memtest86+x64.iso",
}
ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
LDLINUX = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")

# GRUB's loopback.cfg convention, as Debian live and Ubuntu write it: the image's path arrives as iso_path.
LOOPBACK_CFG = """\
menuentry "Install from the image file" {
\tlinux /install.amd/vmlinuz priority=low iso-scan/filename=${iso_path}
\tinitrd /install.amd/initrd.gz
}
"""
GRUB_CFG = """\
set timeout=5
if [ x$feature_default_font_path = xy ] ; then
   font=unicode
else
   font=$prefix/font.pf2
fi
set kernel=/install.amd/vmlinuz
menuentry "Install" {
\tlinux $kernel priority=low
\tinitrd /install.amd/initrd.gz
}
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


def installer_tree() -> Path:
    return debian_packages.unpacked(INSTALLER) / INSTALLER_TREE


def installer_images() -> Path:
    return debian_packages.unpacked(INSTALLER) / INSTALLER_IMAGES


def loopback_image(folder: Path, padding: int = 0) -> Path:
    """A grub-mkrescue image (Debian live and Ubuntu's layout): loopback.cfg and grub.cfg, the installer's kernel.

    `padding` bytes of a file stored before the kernel make the image as large as a live system's.
    """
    tree = folder / "loopback-tree"
    (tree / "boot/grub").mkdir(parents=True)
    (tree / "install.amd").mkdir()
    if padding:
        with open(tree / "filesystem.squashfs", "wb") as file:
            file.truncate(padding)
    shutil.copyfile(installer_images() / "linux", tree / "install.amd/vmlinuz")
    shutil.copyfile(installer_images() / "initrd.gz", tree / "install.amd/initrd.gz")
    (tree / "boot/grub/loopback.cfg").write_text(LOOPBACK_CFG)
    (tree / "boot/grub/grub.cfg").write_text(GRUB_CFG)
    image = folder / "loopback.iso"
    _run(["grub-mkrescue", "-o", str(image), str(tree)])
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


def pycdlib_wheel(folder: Path) -> Path:
    """The wheel of the pycdlib this venv runs (requirements-dev.txt pins it), from PyPI once, then the cache."""
    from importlib.metadata import version

    wanted = version("pycdlib")
    cached = debian_packages.CACHE / "pypi" / "pycdlib"
    found = sorted(cached.glob(f"pycdlib-{wanted}-*.whl"))
    if not found:
        cached.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=cached))
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                f"pycdlib=={wanted}",
                "-d",
                str(partial),
            ]
        )
        (downloaded,) = partial.glob("*.whl")
        found = [downloaded.rename(cached / downloaded.name)]
        shutil.rmtree(partial)
    return Path(shutil.copy(found[0], folder))
