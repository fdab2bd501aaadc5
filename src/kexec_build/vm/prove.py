"""`inv prove`: the real-reboot proof as a command.

For each target QEMU can boot, one guest starts on Debian's kernel with the `kexec` taken out of
the built wheel, then kexecs into the next kernel once per load mode its kernel supports (a
chain, in the same guest), each time with a fresh marker on the command line. A mode is proven
when the next kernel's init reports that marker.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .. import columns
from ..errors import GuestError, ProveError
from ..recipes import Release, Target
from . import guests
from .binaries import extract_kexec, wheels_for

Log = Callable[[str], None]


@dataclass(frozen=True)
class Proof:
    """How one (target, load mode) ended: seconds from `kexec --load` to the next kernel's init, and the verdict."""

    target: str
    mode: str
    seconds: float | None
    verdict: str

    @property
    def failed(self) -> bool:
        return self.verdict.startswith("FAILED")


def prove(targets: Sequence[Target], release: Release, *, log: Log = print) -> list[Proof]:
    """Prove every target that QEMU can boot; log one table; raise `ProveError` if any mode failed."""
    bootable = [target.name for target in targets if target.name in guests.BOARDS]
    wheels = wheels_for(bootable, release)
    proofs: list[Proof] = []
    for target in targets:
        if target.name in guests.BOARDS:
            log(f"prove: {target.name}: booting Debian's kernel with {wheels[target.name].name}'s kexec")
            proofs += prove_target(guests.BOARDS[target.name], extract_kexec(wheels[target.name]))
        else:
            reason = guests.UNPROVEN.get(target.name, "no QEMU board is defined for it")
            proofs.append(Proof(target.name, "-", None, f"not proven: {reason}"))
    log(table(proofs))
    failed = [proof for proof in proofs if proof.failed]
    if failed:
        raise ProveError(
            f"{len(failed)} of {len(proofs)} proofs failed (console logs in {guests.log_path('').parent}):\n"
            + "\n".join(f"{proof.target} {proof.mode}: {proof.verdict}" for proof in failed)
        )
    return proofs


def prove_target(board: guests.Board, kexec: Path) -> list[Proof]:
    """Boot `board`'s guest with `kexec`, then kexec once per mode of the board; one `Proof` per mode."""
    proofs = []
    with tempfile.TemporaryDirectory(prefix="kexec-bin-prove-") as workdir:
        try:
            machine = guests.boot(
                board,
                kexec,
                log=guests.log_path(f"prove-{board.target}"),
                workdir=Path(workdir),
                qemu_options=guests.NO_RESET,
            )
        except GuestError as error:
            return [
                Proof(board.target, mode, None, _failure("the first kernel did not boot", error))
                for mode in board.modes
            ]
        try:
            for mode in board.modes:
                proofs.append(_prove_mode(machine, board, mode))
                if proofs[-1].failed:
                    break
        finally:
            machine.close()
    skipped = board.modes[len(proofs) :]
    return proofs + [Proof(board.target, mode, None, "FAILED: not run, an earlier mode failed") for mode in skipped]


def _prove_mode(machine, board: guests.Board, mode: str) -> Proof:
    marker = f"vmtest.marker={secrets.token_hex(8)}"
    started = time.monotonic()
    try:
        cmdline = guests.kexec_reboot(machine, board, guests.LOAD_MODES[mode], marker)
    except GuestError as error:
        return Proof(board.target, mode, None, _failure("no next kernel", error))
    seconds = time.monotonic() - started
    if marker not in cmdline.split():
        return Proof(board.target, mode, seconds, f"FAILED: the next kernel reported {cmdline!r}, without {marker}")
    return Proof(board.target, mode, seconds, "ok")


def _failure(what: str, error: GuestError) -> str:
    return f"FAILED: {what}: {str(error).splitlines()[0]}"


def table(proofs: Sequence[Proof]) -> str:
    """One row per target and load mode: seconds from `kexec --load` to the next kernel's init, and the verdict."""
    rows = [("target", "mode", "seconds", "verdict")]
    rows += [
        (proof.target, proof.mode, "-" if proof.seconds is None else f"{proof.seconds:.1f}", proof.verdict)
        for proof in proofs
    ]
    return columns.align(rows)
