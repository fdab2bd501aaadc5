"""The next kernel as the boot loader would choose it, over root trees holding real Debian kernels."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from kexec_bin.bootloader import compare_versions, inside, next_kernel
from kexec_bin.errors import BootError

from .kernel_trees import install_kernel, package_tree, write_grub

ADVANCED = "Advanced options for Debian GNU/Linux"
UUID = "2f6b7bb5-6a0d-4d7c-9a59-6d1c8c6f2b0e"


@pytest.fixture(scope="module")
def packages():
    """bookworm's kernel package and bookworm-backports' newer one."""
    return package_tree("bookworm"), package_tree("bookworm-backports")


@pytest.fixture
def machine(tmp_path, packages):
    """A root with both kernels installed; returns (root, old release, new release)."""
    root = tmp_path / "root"
    old = install_kernel(root, packages[0])
    new = install_kernel(root, packages[1])
    assert compare_versions(new, old) > 0, (new, old)
    return root, old, new


def test_newest_installed_kernel_by_debian_version_order(machine):
    root, _old, new = machine
    chosen = next_kernel(str(root))
    assert chosen.candidate.kernel == f"/boot/vmlinuz-{new}"
    assert chosen.candidate.initrds == (f"/boot/initrd.img-{new}",)
    assert "newest kernel in /boot" in chosen.candidate.source


def test_a_kernel_without_modules_is_skipped_with_the_reason(machine):
    root, old, new = machine
    shutil.rmtree(root / "lib/modules" / new)
    chosen = next_kernel(str(root))
    assert chosen.candidate.kernel == f"/boot/vmlinuz-{old}"
    (note,) = chosen.notes
    assert f"skipped /boot/vmlinuz-{new}" in note and f"/lib/modules/{new} does not exist" in note


def test_no_kernel_found(tmp_path):
    (tmp_path / "boot").mkdir()
    with pytest.raises(BootError, match="no kernel found"):
        next_kernel(str(tmp_path))


def test_vmlinuz_links_when_boot_has_no_versioned_kernel(tmp_path, packages):
    root = tmp_path / "root"
    release = install_kernel(root, packages[0])
    # A layout where the versioned files live elsewhere and only Debian's symlinks point at them.
    (root / "kernels").mkdir()
    for name in (f"vmlinuz-{release}", f"initrd.img-{release}"):
        (root / "boot" / name).rename(root / "kernels" / name)
    (root / "vmlinuz").symlink_to(f"kernels/vmlinuz-{release}")
    (root / "initrd.img").symlink_to(f"/kernels/initrd.img-{release}")
    chosen = next_kernel(str(root)).candidate
    assert (chosen.kernel, chosen.initrds, chosen.release) == ("/vmlinuz", ("/initrd.img",), release)


def test_grub_default_zero_is_the_first_entry(machine):
    root, old, new = machine
    write_grub(root, new, old)
    chosen = next_kernel(str(root)).candidate
    assert chosen.kernel == f"/boot/vmlinuz-{new}"
    assert "GRUB default entry 'Debian GNU/Linux' in /boot/grub/grub.cfg" in chosen.source


@pytest.mark.parametrize(
    "saved_entry",
    [
        f"{ADVANCED}>Debian GNU/Linux, with Linux {{old}}",
        f"gnulinux-advanced-{UUID}>gnulinux-{{old}}-advanced-{UUID}",
        "1>2",
    ],
    ids=["titles", "ids", "positions"],
)
def test_grub_saved_entry_path_into_the_submenu(machine, saved_entry):
    root, old, new = machine
    write_grub(root, new, old, default="${saved_entry}", grubenv={"saved_entry": saved_entry.format(old=old)})
    chosen = next_kernel(str(root)).candidate
    assert chosen.kernel == f"/boot/vmlinuz-{old}"
    assert chosen.initrds == (f"/boot/initrd.img-{old}",)
    assert f"'{ADVANCED} > Debian GNU/Linux, with Linux {old}'" in chosen.source
    assert "saved_entry" in chosen.source


def test_grub_next_entry_wins_over_the_default(machine):
    root, old, new = machine
    write_grub(root, new, old, grubenv={"next_entry": f"gnulinux-advanced-{UUID}>gnulinux-{old}-advanced-{UUID}"})
    chosen = next_kernel(str(root)).candidate
    assert chosen.kernel == f"/boot/vmlinuz-{old}" and "next_entry" in chosen.source


def test_grub_bare_id_of_a_submenu_entry_boots_the_first_entry(machine):
    # GRUB looks a default up in the top menu only (grub-mkconfig warns to use "submenu>entry").
    root, old, new = machine
    write_grub(root, new, old, default=f"gnulinux-{old}-advanced-{UUID}")
    chosen = next_kernel(str(root))
    assert chosen.candidate.kernel == f"/boot/vmlinuz-{new}" and "names no entry" in chosen.notes[0]


def test_grub_default_title_naming_no_entry_boots_the_first(machine):
    root, old, new = machine
    write_grub(root, new, old, default="Windows Boot Manager")
    chosen = next_kernel(str(root))
    assert chosen.candidate.kernel == f"/boot/vmlinuz-{new}"
    assert "names no entry" in chosen.notes[0]


def test_grub_on_a_separate_boot_partition(machine):
    root, old, new = machine
    write_grub(root, new, old, boot_prefix="")  # GRUB's paths are relative to the /boot file system
    assert next_kernel(str(root)).candidate.kernel == f"/boot/vmlinuz-{new}"


def test_grub_default_naming_a_missing_file_is_refused(machine):
    root, old, new = machine
    write_grub(root, new, old)
    (root / "boot" / f"vmlinuz-{new}").unlink()
    with pytest.raises(
        BootError, match=re.escape(f"default entry names /boot/vmlinuz-{new}, which does not exist: run update-grub")
    ):
        next_kernel(str(root))


def test_a_grub_test_on_a_folder_is_a_condition_not_a_refusal(machine):
    # As theme and font snippets in grub.cfg test folders: kexec-bin's reader takes only files, so the test
    # is false, and the menu is read on.
    root, old, new = machine
    config = write_grub(root, new, old)
    (root / "boot/grub/fonts").mkdir()
    text = config.read_text()
    config.write_text("if [ -d /boot/grub/fonts ]; then\n  insmod gfxterm\nfi\n" + text)
    assert next_kernel(str(root)).candidate.kernel == f"/boot/vmlinuz-{new}"


def test_grub_default_on_firmware_setup_is_refused(machine):
    root, old, new = machine
    write_grub(root, new, old, default="uefi-firmware")
    with pytest.raises(BootError, match="starts no Linux kernel"):
        next_kernel(str(root))


def _bls_entry(root, place, name, version, *, sort_key=None):
    folder = root / place / "loader/entries"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"title Debian GNU/Linux {version}", f"version {version}", "machine-id 4a1c9f0a8a3f4e3b9d1e2f3a4b5c6d7e"]
    lines += [f"sort-key {sort_key}"] if sort_key else []
    lines += [f"options root=UUID={UUID} ro quiet", f"linux /vmlinuz-{version}", f"initrd /initrd.img-{version}"]
    (folder / f"{name}.conf").write_text("\n".join(lines) + "\n")


def test_bls_entries_in_systemd_boots_order(machine):
    root, old, new = machine
    # Paths in an entry are relative to the partition that holds it: here /boot.
    _bls_entry(root, "boot", f"4a1c-{old}", old, sort_key="debian")
    _bls_entry(root, "boot", f"4a1c-{new}", new, sort_key="debian")
    chosen = next_kernel(str(root)).candidate
    assert chosen.kernel == f"/boot/vmlinuz-{new}"
    assert f"/boot/loader/entries/4a1c-{new}.conf (the first in systemd-boot's order)" in chosen.source


def test_bls_loader_conf_default_pattern(machine):
    root, old, new = machine
    _bls_entry(root, "boot", f"4a1c-{old}", old)
    _bls_entry(root, "boot", f"4a1c-{new}", new)
    (root / "boot/loader/loader.conf").write_text(f"timeout 3\ndefault 4a1c-{old.split('-')[0]}*\n")
    chosen = next_kernel(str(root)).candidate
    assert chosen.kernel == f"/boot/vmlinuz-{old}" and "loader.conf's default" in chosen.source


def test_bls_entry_naming_a_missing_file_is_refused(machine):
    root, _old, new = machine
    _bls_entry(root, "efi", f"4a1c-{new}", new)  # the ESP holds no copy of the kernel
    with pytest.raises(BootError, match=re.escape(f"names /vmlinuz-{new}, which does not exist (/efi/vmlinuz-{new})")):
        next_kernel(str(root))


def test_links_never_lead_outside_root(tmp_path):
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot/absolute").symlink_to("/etc/passwd")
    (root / "boot/dotdot").symlink_to("../../../../../etc/passwd")
    for link in ("/boot/absolute", "/boot/dotdot", "/../../etc/passwd"):
        assert inside(str(root), link) == str(root / "etc/passwd")


@pytest.mark.skipif(
    shutil.which("dpkg") is None, reason="dpkg (the reference for Debian's version order) is not installed"
)
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("6.12.95+deb12-amd64", "6.1.0-50-amd64"),
        ("6.1.0-9-amd64", "6.1.0-18-amd64"),
        ("6.1.0-50-cloud-amd64", "6.1.0-50-amd64"),
        ("5.10.0-rc1~bpo", "5.10.0"),
        ("1.0~~", "1.0~"),
        ("2.0", "2.0"),
        ("6.1", "6.1.0"),
    ],
)
def test_version_order_is_dpkgs(a, b):
    def dpkg(relation):
        return subprocess.run(["dpkg", "--compare-versions", a, relation, b]).returncode == 0

    expected = 0 if dpkg("eq") else 1 if dpkg("gt") else -1
    assert compare_versions(a, b) == expected
    assert compare_versions(b, a) == -expected
