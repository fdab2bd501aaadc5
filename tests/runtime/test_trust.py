"""`doctor --kernel`'s prediction on Debian's real signed kernel, the same kernel unsigned, and re-signed with
a key made here, against trees whose /proc/keys trust Debian's CA, another CA or that key."""

from __future__ import annotations

import gzip
import json

import pytest

from kexec_bin import cli
from kexec_bin.trust import ACCEPTED, REFUSED, predict, signature_of
from kexec_build.testbed.debian_packages import unpacked
from kexec_build.vm import secure_boot

from .conftest import set_options

DEBIAN_CA = secure_boot.DEBIAN_CA
MICROSOFT_UEFI_CA = ("Microsoft Corporation UEFI CA 2011", "13adbf4309bd82709c8cd54f316ed522988a1bd4")
DEBIAN_SIGNER = "Debian Secure Boot Signer 2022 - linux"


@pytest.fixture(scope="session")
def kernels(tmp_path_factory, debian_kernel):
    """The three kernels: Debian's signed one, the same unsigned, and the same signed with a new test key."""
    folder = tmp_path_factory.mktemp("kernels")
    key, cert = secure_boot.make_key(folder, "kexec-bin test key")
    return {
        "signed": debian_kernel.vmlinuz,
        "unsigned": secure_boot.unsigned(debian_kernel.vmlinuz, folder / "vmlinuz-unsigned"),
        "test-signed": secure_boot.signed(debian_kernel.vmlinuz, key, cert, folder / "vmlinuz-test-signed"),
        "test key": ("kexec-bin test key", secure_boot.subject_key_id(cert)),
    }


def locked_down(tree, *keys):
    """The tree as a Debian kernel booted with Secure Boot sees itself: lockdown integrity, `keys` in /proc/keys."""
    tree.write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
    tree.set_efi_variable("SecureBoot", True)
    lines = [secure_boot.proc_keys_line(name, key_id, 0x100 + index) for index, (name, key_id) in enumerate(keys)]
    tree.write("/proc/keys", "\n".join(lines) + "\n")
    return str(tree.root)


def test_the_signature_of_debians_kernel_names_its_signer_issuer_and_authority(kernels):
    kind, signature = signature_of(kernels["signed"].read_bytes())
    assert kind == "PE image" and signature is not None
    assert signature.signer == DEBIAN_SIGNER and signature.issuer == "Debian Secure Boot CA"
    assert signature.chain[0].authority_key_id == DEBIAN_CA[1]
    assert signature_of(kernels["unsigned"].read_bytes()) == ("PE image", None)


@pytest.mark.parametrize(
    ("kernel", "trusted", "verdict"),
    [
        ("signed", "debian", ACCEPTED),
        ("signed", "other", REFUSED),
        ("signed", "test", REFUSED),
        ("unsigned", "debian", REFUSED),
        ("unsigned", "other", REFUSED),
        ("unsigned", "test", REFUSED),
        ("test-signed", "debian", REFUSED),
        ("test-signed", "other", REFUSED),
        ("test-signed", "test", ACCEPTED),
    ],
)
def test_under_lockdown_only_a_chain_to_a_trusted_key_is_accepted(tree, kernels, kernel, trusted, verdict):
    keys = {"debian": DEBIAN_CA, "other": MICROSOFT_UEFI_CA, "test": kernels["test key"]}[trusted]
    prediction = predict(str(kernels[kernel]), locked_down(tree, MICROSOFT_UEFI_CA, keys))
    assert prediction.verdict == verdict, prediction.to_text()
    assert prediction.syscall == "kexec_file_load"
    if verdict == ACCEPTED:
        assert prediction.trusted_by is not None and prediction.trusted_by.key_id == keys[1]
    elif kernel == "unsigned":
        assert prediction.reason.startswith("no signature")
    else:
        assert "chains to no key the kernel trusts" in prediction.reason
        assert any("mokutil --import" in fix for fix in prediction.fixes())


@pytest.mark.parametrize("kernel", ["signed", "unsigned", "test-signed"])
def test_without_lockdown_anything_goes(tree, kernels, kernel):
    tree.write("/proc/keys", secure_boot.proc_keys_line(*DEBIAN_CA) + "\n")
    prediction = predict(str(kernels[kernel]), str(tree.root))
    assert prediction.verdict == ACCEPTED and prediction.syscall == "auto"


def test_signatures_forced_without_lockdown_leave_kexec_load_open(tree, kernels, debian_kernel):
    # KEXEC_SIG_FORCE binds kexec_file_load only: any kernel still loads through kexec_load, so the
    # story commands use that one.
    tree.set_config(set_options(debian_kernel.config, KEXEC_SIG_FORCE="y"))
    for kernel in ("signed", "unsigned"):
        prediction = predict(str(kernels[kernel]), str(tree.root))
        assert (prediction.verdict, prediction.syscall) == (ACCEPTED, "kexec_load")


def test_signatures_forced_and_kexec_load_missing_need_a_trusted_signer(tree, kernels, debian_kernel):
    tree.set_config(set_options(debian_kernel.config, KEXEC_SIG_FORCE="y", KEXEC="n"))
    tree.write("/proc/keys", secure_boot.proc_keys_line(*DEBIAN_CA) + "\n")
    root = str(tree.root)
    assert predict(str(kernels["signed"]), root).verdict == ACCEPTED
    assert predict(str(kernels["unsigned"]), root).verdict == REFUSED


def test_a_locked_down_kernel_without_a_pe_signature_check_refuses_every_kernel(tree, kernels, debian_kernel):
    tree.set_config(set_options(debian_kernel.config, KEXEC_BZIMAGE_VERIFY_SIG="n"))
    prediction = predict(str(kernels["signed"]), locked_down(tree, DEBIAN_CA))
    assert prediction.verdict == REFUSED and "CONFIG_KEXEC_BZIMAGE_VERIFY_SIG" in prediction.reason


@pytest.mark.parametrize("keys", [None, "", "3b1f0e5a I--Q---     1 perm 3f030000     0     0 keyring   _ses: 1\n"])
def test_unreadable_or_invisible_keys_are_unknown_not_refused(tree, kernels, keys):
    # Without root, /proc/keys lists the reader's own keyrings only, never the kernel's trusted keys.
    root = locked_down(tree, DEBIAN_CA)
    if keys is None:
        tree.remove("/proc/keys")
    else:
        tree.write("/proc/keys", keys)
    prediction = predict(str(kernels["signed"]), root)
    assert prediction.verdict == "unknown" and "as root" in prediction.fixes()[0]
    assert "none visible in /proc/keys" in prediction.to_text()


def test_a_kernel_that_refuses_every_load_says_why_whatever_the_file(tree, kernels):
    tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n")
    prediction = predict(str(kernels["signed"]), str(tree.root))
    assert prediction.verdict == REFUSED and "kexec_load_disabled" in prediction.fixes()[0]


def test_a_gzip_compressed_or_zboot_image_is_judged_by_the_image_inside(tmp_path, kernels):
    packed = gzip.compress(kernels["signed"].read_bytes(), compresslevel=1)
    kind, signature = signature_of(packed)
    assert kind == "gzip-compressed: PE image" and signature is not None and signature.signer == DEBIAN_SIGNER
    # EFI zboot's header (drivers/firmware/efi/libstub/zboot-header.S): "MZ", "zimg", the payload's
    # offset and size, then the compression's name at 24.
    header = bytearray(64)
    header[0:8] = b"MZ\0\0zimg"
    header[8:12], header[12:16] = (64).to_bytes(4, "little"), len(packed).to_bytes(4, "little")
    header[24:28] = b"gzip"
    kind, signature = signature_of(bytes(header) + packed)
    assert kind == "EFI zboot (gzip): PE image" and signature is not None
    assert signature.issuer == "Debian Secure Boot CA"


def test_doctor_kernel_exit_status_text_and_json(tree, kernels, capsys):
    root = locked_down(tree, DEBIAN_CA)
    assert cli.main(["doctor", "--kernel", str(kernels["signed"]), "--root", root]) == 0
    text = capsys.readouterr().out
    assert f"signed by: {DEBIAN_SIGNER}, issuer Debian Secure Boot CA" in text and "verdict: accepted" in text
    assert cli.main(["doctor", "--kernel", str(kernels["test-signed"]), "--root", root, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == REFUSED and report["signature"]["signer"] == "kexec-bin test key"
    assert report["needs"] == [f"kexec-bin test key ({kernels['test key'][1]})"]
    assert cli.main(["doctor", "--kernel", str(kernels["unsigned"]), "--root", root]) == 1
    assert "signed by: no signature" in capsys.readouterr().out


def test_debians_arm64_kernel_under_lockdown_refuses_every_kernel_signed_or_not(tree, kernels):
    # Debian's arm64 kernels have kexec_load only (no CONFIG_KEXEC_FILE), which lockdown refuses.
    boot = unpacked("linux-image-arm64", "arm64") / "boot"
    (config,) = boot.glob("config-*")
    tree.set_config(config.read_text())
    prediction = predict(str(next(boot.glob("vmlinuz-*"))), locked_down(tree, DEBIAN_CA))
    assert prediction.verdict == REFUSED and "without the kexec_file_load system call" in prediction.reason
    assert prediction.needed() == []  # no key would help
    assert (
        any("CONFIG_KEXEC_FILE=y" in fix for fix in prediction.fixes()) and "--via firmware" in prediction.fixes()[-1]
    )


def test_an_ima_rule_appraising_kexec_kernels_makes_a_trusted_signature_not_enough_to_tell(tree, kernels):
    root = locked_down(tree, DEBIAN_CA)
    # The Secure Boot arch policy of a kernel with KEXEC_SIG measures kexec kernels, it does not appraise them.
    tree.write("/sys/kernel/security/ima/policy", "measure func=KEXEC_KERNEL_CHECK\nmeasure func=MODULE_CHECK\n")
    assert predict(str(kernels["signed"]), root).verdict == ACCEPTED
    tree.write("/sys/kernel/security/ima/policy", "appraise func=KEXEC_KERNEL_CHECK appraise_type=imasig\n")
    prediction = predict(str(kernels["signed"]), root)
    assert prediction.verdict == "unknown" and "IMA also appraises kexec kernels here" in prediction.reason
    assert predict(str(kernels["unsigned"]), root).verdict == REFUSED  # refused by the signature check first


@pytest.mark.parametrize("kernel", ["/nonexistent/vmlinuz", "/dev/zero"])
def test_no_kernel_file_to_judge_is_a_one_line_usage_error(tree, kernel, capsys):
    assert cli.main(["doctor", "--kernel", kernel, "--root", str(tree.root)]) == 64
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and f"the kernel '{kernel}'" in err


def test_a_damaged_signature_is_no_signature(tree, kernels, tmp_path):
    damaged = tmp_path / "vmlinuz-damaged"
    image = bytearray(kernels["signed"].read_bytes())
    # The PE certificate table (data directory 4 of a PE32+ optional header), and in it the PKCS#7's first bytes.
    header = int.from_bytes(image[0x3C:0x40], "little")
    table = int.from_bytes(image[header + 24 + 112 + 32 : header + 24 + 112 + 36], "little")
    image[table + 8 : table + 40] = bytes(32)
    damaged.write_bytes(image)
    prediction = predict(str(damaged), locked_down(tree, DEBIAN_CA))
    assert prediction.kind.startswith("PE image with a damaged signature") and prediction.verdict == REFUSED
