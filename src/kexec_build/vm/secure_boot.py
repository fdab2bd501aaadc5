"""Secure Boot for the harness: kernels signed, unsigned and re-signed, and a guest booted by signed firmware.

The firmware is Debian's OVMF built with Secure Boot (x86_64: `OVMF_CODE_4M.secboot.fd`, which needs
q35 with SMM and a secure pflash; aarch64: AAVMF) and a writable copy of a variable store: `ms` has
Microsoft's KEK and db enrolled, `snakeoil` the firmware's own test key (in PK, KEK and db). The boot
disk is a FAT image made with mtools (no root, no loop device): shim (signed by Microsoft) as the
removable-media loader, GRUB (signed by Debian, checked by shim against its built-in Debian CA),
then GRUB loads the kernel through shim's verifier, so only a kernel signed by Debian's CA boots.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..testbed import debian_packages
from . import guests
from .debian_guest import DebianGuest, qemu_drives
from .machine import Machine


@dataclass(frozen=True)
class Firmware:
    """One CPU's Secure Boot firmware, its QEMU options, and where Debian's signed shim and GRUB are."""

    code: Path
    variables: dict[str, Path]
    machine: tuple[str, ...]
    """QEMU options the firmware needs (x86_64: SMM and a secure flash, so only it can write the variables)."""
    debian_arch: str
    loader_name: str
    """The removable-media path's file name under EFI/BOOT."""
    shim: str
    grub_package: str
    grub: str
    grub_name: str


OVMF, AAVMF = Path("/usr/share/OVMF"), Path("/usr/share/AAVMF")
FIRMWARES = {
    "x86_64": Firmware(
        OVMF / "OVMF_CODE_4M.secboot.fd",
        {"ms": OVMF / "OVMF_VARS_4M.ms.fd", "snakeoil": OVMF / "OVMF_VARS_4M.snakeoil.fd"},
        ("-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on"),
        "amd64",
        "BOOTX64.EFI",
        "usr/lib/shim/shimx64.efi.signed",
        "grub-efi-amd64-signed",
        "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
        "grubx64.efi",
    ),
    "aarch64": Firmware(
        AAVMF / "AAVMF_CODE.ms.fd",
        {"ms": AAVMF / "AAVMF_VARS.ms.fd", "snakeoil": AAVMF / "AAVMF_VARS.snakeoil.fd"},
        (),
        "arm64",
        "BOOTAA64.EFI",
        "usr/lib/shim/shimaa64.efi.signed",
        "grub-efi-arm64-signed",
        "usr/lib/grub/arm64-efi-signed/grubaa64.efi.signed",
        "grubaa64.efi",
    ),
}
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


# The CA that signs Debian's kernels for Secure Boot: its name and subject key id, as /proc/keys shows it
# on a Debian machine booted through shim (the tests' and the bench's trusted key).
DEBIAN_CA = ("Debian Secure Boot CA", "6ccece7e4c6c0d1f6149f3dd27dfcc5cbb419ea1")


def proc_keys_line(name: str, key_id: str, serial: int = 0x0DCA30DD) -> str:
    """One asymmetric key as /proc/keys shows it to root."""
    return f"{serial:08x} I------     1 perm 1f010000     0     0 asymmetri {name}: {key_id}: X509.rsa {key_id[-8:]} []"


def shim(target: str = "x86_64") -> Path:
    """Debian's shim for `target`, signed by Microsoft's UEFI CA, with Debian's Secure Boot CA built in."""
    firmware = FIRMWARES[target]
    return debian_packages.unpacked("shim-signed", firmware.debian_arch) / firmware.shim


def boot_disk(
    target: str, files: dict[str, Path | bytes], image: Path, grub_cfg: str, loader: Path | None = None
) -> Path:
    """A FAT image (mtools) with `loader` (default: `target`'s shim) on the removable-media path, GRUB
    beside it, `grub_cfg` where GRUB looks (EFI/debian and EFI/BOOT), and `files` (disk path -> host file or bytes)."""
    firmware = FIRMWARES[target]
    grub = debian_packages.unpacked(firmware.grub_package, firmware.debian_arch) / firmware.grub
    content: dict[str, Path | bytes] = {
        f"EFI/BOOT/{firmware.loader_name}": loader or shim(target),
        f"EFI/BOOT/{firmware.grub_name}": grub,
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


def firmware_options(target: str, variables: str, workdir: Path) -> list[str]:
    """QEMU options for `target`'s firmware with Secure Boot and a copy of the `variables` store."""
    firmware = FIRMWARES[target]
    store = workdir / f"VARS-{target}-{variables}.fd"
    shutil.copyfile(firmware.variables[variables], store)
    return [
        *firmware.machine,
        "-drive",
        f"if=pflash,format=raw,unit=0,readonly=on,file={firmware.code}",
        "-drive",
        f"if=pflash,format=raw,unit=1,file={store}",
    ]


# The firmware, shim, GRUB and the kernel's own start under TCG on a loaded 2-core machine: minutes.
BOOT_SECONDS = 600
GRUB_CFG = """set timeout=0
menuentry "Debian, signed" {{
    linux /vmlinuz {cmdline}
    initrd /initrd.img
}}
"""


def start(
    target: str,
    variables: str,
    workdir: Path,
    log: Path,
    *,
    kernel: Path,
    initrd: Path,
    cmdline: str,
    drives: Sequence[str] = (),
    loader: Path | None = None,
    qemu_options: Sequence[str] = (),
    memory_mb: int | None = None,
) -> Machine:
    """`target`'s guest booted by its firmware with Secure Boot and the `variables` store ("ms",
    "snakeoil"), through `loader` (default: shim), GRUB and `kernel` with `initrd` and `cmdline`
    from the boot disk, which comes after `drives`; returned at its console loop's prompt."""
    board = guests.BOARDS[target]
    esp = boot_disk(
        target,
        {"vmlinuz": kernel, "initrd.img": initrd},
        workdir / f"esp-{target}-{variables}.img",
        GRUB_CFG.format(cmdline=f"{cmdline} console={board.console}"),
        loader,
    )
    options = [
        *guests.NO_RESET,
        *firmware_options(target, variables, workdir),
        *drives,
        "-drive",
        f"file={esp},if=virtio,format=raw",
        *qemu_options,
    ]
    return guests.start_ready(board, options, log, BOOT_SECONDS, memory_mb=memory_mb)


def start_debian(
    guest: DebianGuest,
    variables: str,
    workdir: Path,
    log: Path,
    *,
    disks: Sequence[Path] = (),
    loader: Path | None = None,
    qemu_options: Sequence[str] = (),
) -> Machine:
    """The amd64 Debian guest (`start`), its root under -snapshot as vda, `disks` as vdb, ..."""
    return start(
        "x86_64",
        variables,
        workdir,
        log,
        kernel=guest.kernel,
        initrd=guest.initrd,
        cmdline=guest.cmdline(),
        drives=qemu_drives(guest, *disks),
        loader=loader,
        qemu_options=qemu_options,
        # 1.5 GiB: the installer's own minimum, beside what the firmware keeps, and the files kexec holds.
        memory_mb=1536,
    )
