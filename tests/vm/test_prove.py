"""`inv prove`: each bootable target's Debian kernel kexecs into the next with the wheel's kexec, once per load mode."""

from __future__ import annotations

import pytest

from kexec_build.vm import prove
from kexec_build.vm.binaries import kexec_from_wheel
from kexec_build.vm.guests import BOARDS
from tests.inv import inv

pytestmark = pytest.mark.vm

# One guest per target, a chain of one kexec per mode: minutes under TCG on a loaded machine.
PROVE_SECONDS = 1800


def rows(output: str) -> dict[tuple[str, str], str]:
    """The verdict of each (target, mode) row in the table `inv prove` printed."""
    table = output[output.index("target  mode") :].splitlines()[1:]
    return {(cells[0], cells[1]): cells[3] for cells in (line.split(None, 3) for line in table)}


@pytest.mark.timeout(PROVE_SECONDS)
def test_inv_prove_x86_64_proves_every_load_mode():
    result = inv("prove", "--arch", "x86_64", timeout=PROVE_SECONDS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert rows(result.stdout) == {("x86_64", mode): "ok" for mode in BOARDS["x86_64"].modes}
    assert set(BOARDS["x86_64"].modes) == {"default", "file-load", "syscall-load"}


# Every other target whose Debian kernel boots in qemu-system here (docs/vm-proofs.md).
@pytest.mark.timeout(PROVE_SECONDS)
@pytest.mark.parametrize("target", [name for name in BOARDS if name != "x86_64"])
def test_prove_target(target):
    proofs = prove.prove_target(BOARDS[target], kexec_from_wheel(target))
    assert [(proof.mode, proof.verdict) for proof in proofs] == [(mode, "ok") for mode in BOARDS[target].modes]


def test_a_kexec_that_only_exits_zero_proves_nothing(tmp_path):
    impostor = tmp_path / "kexec"
    impostor.write_text("#!/bin/sh\nexit 0\n")
    impostor.chmod(0o755)
    proofs = prove.prove_target(BOARDS["x86_64"], impostor)
    assert [proof.mode for proof in proofs] == list(BOARDS["x86_64"].modes)
    assert "`kexec --exec` returned (status 0)" in proofs[0].verdict
    assert all(proof.failed for proof in proofs)
