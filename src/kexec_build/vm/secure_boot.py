"""Secure Boot for the harness: kernels signed, unsigned and re-signed, and a guest booted by signed firmware.

The firmware is Debian's OVMF built with Secure Boot (`OVMF_CODE_4M.secboot.fd`, which needs q35 with
SMM and a secure pflash) and a writable copy of a variable store: `ms` has Microsoft's KEK and db
enrolled, `snakeoil` OVMF's own test key. The boot disk is a FAT image made with mtools (no root,
no loop device): shim (signed by Microsoft) as the removable-media loader, GRUB (signed by Debian,
checked by shim against its built-in Debian CA), then GRUB loads the kernel through shim's
verifier, so only a kernel signed by Debian's CA boots.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from .. import debian_packages
from . import guests
from .debian_guest import DebianGuest, qemu_drives
from .machine import Machine

OVMF = Path("/usr/share/OVMF")
FIRMWARE = OVMF / "OVMF_CODE_4M.secboot.fd"
VARIABLES = {"ms": OVMF / "OVMF_VARS_4M.ms.fd", "snakeoil": OVMF / "OVMF_VARS_4M.snakeoil.fd"}
SNAKEOIL_KEY = Path("/usr/share/ovmf/PkKek-1-snakeoil.key")
SNAKEOIL_CERT = Path("/usr/share/ovmf/PkKek-1-snakeoil.pem")
SNAKEOIL_PASSPHRASE = "snakeoil"


def make_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A new RSA key and its self-signed certificate (with subject and authority key ids), as `sbsign` takes them."""
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650"]
        + ["-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return key, cert


def subject_key_id(cert: Path) -> str:
    """The certificate's subject key id in hex, as openssl reads it (the kernel names the key by it)."""
    text = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectKeyIdentifier"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return text.splitlines()[-1].strip().replace(":", "").lower()


def unsigned(kernel: Path, out: Path) -> Path:
    """`kernel` with its signature removed (`sbattach --remove`)."""
    shutil.copyfile(kernel, out)
    subprocess.run(["sbattach", "--remove", str(out)], check=True, capture_output=True)
    return out


def signed(kernel: Path, key: Path, cert: Path, out: Path, passphrase: str | None = None) -> Path:
    """`kernel` without its own signature, signed with `key` (`sbsign`); `passphrase` for an encrypted key."""
    bare = unsigned(kernel, out.with_name(out.name + ".unsigned"))
    if passphrase is not None:  # sbsign reads no passphrase: decrypt the key into a file beside the output
        plain = out.with_name(out.name + ".key")
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-passin", f"pass:{passphrase}", "-out", str(plain)],
            check=True,
            capture_output=True,
        )
        key = plain
    subprocess.run(
        ["sbsign", "--key", str(key), "--cert", str(cert), "--output", str(out), str(bare)],
        check=True,
        capture_output=True,
    )
    bare.unlink()
    return out


def proc_keys_line(name: str, key_id: str, serial: int = 0x0DCA30DD) -> str:
    """One asymmetric key as /proc/keys shows it to root."""
    return f"{serial:08x} I------     1 perm 1f010000     0     0 asymmetri {name}: {key_id}: X509.rsa {key_id[-8:]} []"


def shim() -> Path:
    """Debian's shim, signed by Microsoft's UEFI CA, with Debian's Secure Boot CA built in."""
    return debian_packages.unpacked("shim-signed") / "usr/lib/shim/shimx64.efi.signed"


def boot_disk(files: dict[str, Path | bytes], image: Path, grub_cfg: str, loader: Path | None = None) -> Path:
    """A FAT image (mtools) with `loader` (default: shim) as EFI/BOOT/BOOTX64.EFI, GRUB beside it,
    `grub_cfg` where GRUB looks (EFI/debian and EFI/BOOT), and `files` (disk path -> host file or bytes)."""
    grub = debian_packages.unpacked("grub-efi-amd64-signed") / "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
    content: dict[str, Path | bytes] = {
        "EFI/BOOT/BOOTX64.EFI": loader or shim(),
        "EFI/BOOT/grubx64.efi": grub,
        "EFI/BOOT/grub.cfg": grub_cfg.encode(),
        "EFI/debian/grub.cfg": grub_cfg.encode(),
        **files,
    }
    size = sum(len(v) if isinstance(v, bytes) else v.stat().st_size for v in content.values())
    image.unlink(missing_ok=True)
    subprocess.run(
        ["mformat", "-i", str(image), "-C", "-T", str((size * 12 // 10 >> 9) + 65536), "-h", "64", "-s", "32", "::"],
        check=True,
        capture_output=True,
    )
    made: set[str] = set()
    for disk_path, source in sorted(content.items()):
        parts = disk_path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in made:
                subprocess.run(["mmd", "-i", str(image), f"::{folder}"], check=True, capture_output=True)
                made.add(folder)
        if isinstance(source, bytes):
            staged = image.with_name(image.name + ".staged")
            staged.write_bytes(source)
            source = staged
        subprocess.run(["mcopy", "-i", str(image), str(source), f"::{disk_path}"], check=True, capture_output=True)
    image.with_name(image.name + ".staged").unlink(missing_ok=True)
    return image


def firmware_options(variables: str, workdir: Path) -> list[str]:
    """QEMU options (q35 with SMM, secure pflash) for OVMF with Secure Boot and a copy of the `variables` store."""
    store = workdir / f"OVMF_VARS-{variables}.fd"
    shutil.copyfile(VARIABLES[variables], store)
    return [
        "-machine",
        "q35,smm=on",
        "-global",
        "driver=cfi.pflash01,property=secure,value=on",
        "-drive",
        f"if=pflash,format=raw,unit=0,readonly=on,file={FIRMWARE}",
        "-drive",
        f"if=pflash,format=raw,unit=1,file={store}",
    ]


# OVMF, shim, GRUB and the kernel's own start under TCG on a loaded 2-core machine: about 4 minutes.
BOOT_SECONDS = 600
GRUB_CFG = """set timeout=0
menuentry "Debian, signed" {{
    linux /vmlinuz {cmdline}
    initrd /initrd.img
}}
"""


def start(
    guest: DebianGuest,
    variables: str,
    workdir: Path,
    log: Path,
    *,
    disks: Sequence[Path] = (),
    loader: Path | None = None,
    qemu_options: Sequence[str] = (),
) -> Machine:
    """The Debian guest booted by OVMF with Secure Boot and the `variables` store ("ms", "snakeoil"),
    through `loader` (default: shim), GRUB and its signed kernel; its root under -snapshot, `disks` as
    vdb, ...; returned at its console loop's prompt."""
    esp = boot_disk(
        {"vmlinuz": guest.kernel, "initrd.img": guest.initrd},
        workdir / f"esp-{variables}.img",
        GRUB_CFG.format(cmdline=f"{guest.cmdline()} console=ttyS0"),
        loader,
    )
    options = [
        *guests.NO_RESET,
        *firmware_options(variables, workdir),
        *qemu_drives(guest, *disks, esp),
        *qemu_options,
    ]
    # 1.5 GiB: the installer's own minimum, beside what the firmware keeps, and the files kexec holds.
    return guests.start_ready(guests.BOARDS["x86_64"], options, log, BOOT_SECONDS, memory_mb=1536)
