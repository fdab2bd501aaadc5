"""The systemd guest booted as an installed PC boots: the firmware starts GRUB, GRUB reads its menu and grubenv.

QEMU's firmware (SeaBIOS) starts GRUB's i386-pc core image through lnxboot.img (QEMU's -kernel
takes it for a Linux kernel), so no boot sector or partition table is needed. GRUB finds the
guest's /boot on a disk of its own by label and reads grub.cfg and grubenv there; the menu is
shaped as update-grub writes it (the newest kernel first and the default, each kernel again under
"Advanced options", the same ids) and honours grubenv's next_entry once, as grub-reboot's one-shot
entry works. A reset runs the firmware and GRUB again, so a test sees what a real machine would.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .debian_guest import DebianGuest, make_ext4

BOOT_LABEL = "kexecboot"
# GRUB reads /boot as its own file system: kernels at its top, the menu and grubenv in grub/.
FSTAB_LINE = f"LABEL={BOOT_LABEL} /boot ext4 rw 0 2"
MENU_ID = "kexecguest"
GRUB_PLATFORM = Path("/usr/lib/grub/i386-pc")
GRUB_MODULES = (
    "biosdisk",
    "ext2",
    "search",
    "search_label",
    "normal",
    "configfile",
    "linux",
    "loadenv",
    "test",
    "echo",
    "serial",
    "terminal",
)
# update-grub's 00_header: the one-shot next_entry, consumed (and saved as consumed) before it boots.
MENU_HEAD = """serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
else
   set default="0"
fi
set timeout_style=hidden
set timeout=0
"""


# update-grub's 41_custom: entries added without running update-grub.
MENU_CUSTOM = """if [ -f ${config_directory}/custom.cfg ]; then
  source ${config_directory}/custom.cfg
elif [ -z "${config_directory}" -a -f $prefix/custom.cfg ]; then
  source $prefix/custom.cfg
fi
"""


def entry_id(version: str) -> str:
    """GRUB's id of `version`'s entry under Advanced options, as update-grub names it."""
    return f"gnulinux-advanced-{MENU_ID}>gnulinux-{version}-advanced-{MENU_ID}"


def menu(guest: DebianGuest, cmdline: str) -> str:
    """grub.cfg for the guest's kernels, newest first, each booting the root disk with `cmdline` added."""
    newest_first = sorted(guest.versions, reverse=True)

    def entry(title: str, ident: str, version: str, indent: str) -> str:
        return (
            f"{indent}menuentry '{title}' --id '{ident}' {{\n"
            f"{indent}\techo 'GRUB: booting {version}'\n"
            f"{indent}\tlinux /vmlinuz-{version} console=ttyS0 {guest.cmdline(cmdline)}\n"
            f"{indent}\tinitrd /initrd.img-{version}\n"
            f"{indent}}}\n"
        )

    advanced = "".join(
        entry(f"Debian GNU/Linux, with Linux {version}", f"gnulinux-{version}-advanced-{MENU_ID}", version, "\t")
        for version in newest_first
    )
    return (
        MENU_HEAD
        + entry("Debian GNU/Linux", f"gnulinux-simple-{MENU_ID}", newest_first[0], "")
        + f"submenu 'Advanced options for Debian GNU/Linux' --id 'gnulinux-advanced-{MENU_ID}' {{\n{advanced}}}\n"
        + MENU_CUSTOM
    )


def grub_kernel(folder: Path) -> Path:
    """GRUB's core image behind lnxboot.img: a file QEMU's -kernel starts, which finds /boot by its label."""
    early = folder / "early.cfg"
    early.write_text(f"search --no-floppy --label {BOOT_LABEL} --set=root\nset prefix=($root)/grub\n")
    core = folder / "core.img"
    subprocess.run(
        [
            "grub-mkimage",
            "-O",
            "i386-pc",
            "-d",
            str(GRUB_PLATFORM),
            "-c",
            str(early),
            "-p",
            "/grub",
            "-o",
            str(core),
            *GRUB_MODULES,
        ],
        check=True,
        capture_output=True,
    )
    image = folder / "grub.lnx"
    image.write_bytes((GRUB_PLATFORM / "lnxboot.img").read_bytes() + core.read_bytes())
    return image


def boot_disk(guest: DebianGuest, folder: Path, *, cmdline: str, next_entry: str | None = None) -> Path:
    """The guest's /boot as a disk of its own: its kernels and initrds, grub.cfg, and grubenv (with `next_entry`)."""
    tree = folder / "boot.tree"
    (tree / "grub").mkdir(parents=True)
    for version in guest.versions:
        for name in (f"vmlinuz-{version}", f"initrd.img-{version}"):
            shutil.copyfile(guest.image.parent / name, tree / name)
    (tree / "grub/grub.cfg").write_text(menu(guest, cmdline))
    grubenv = tree / "grub/grubenv"
    subprocess.run(["grub-editenv", str(grubenv), "create"], check=True)
    if next_entry:
        subprocess.run(["grub-editenv", str(grubenv), "set", f"next_entry={next_entry}"], check=True)
    image = make_ext4(tree, folder / "boot.ext4")
    subprocess.run(["e2label", str(image), BOOT_LABEL], check=True)
    return image
