"""Fixtures of the VM proofs: the kexec under test and guests whose console logs are kept."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import pytest

from kexec_build.vm import guests
from kexec_build.vm.binaries import kexec_from_wheel
from kexec_build.vm.machine import Machine


class Guests:
    """The guests one test starts: each keeps its console log in build/vm-logs, none resets; all stop at the end."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.started: list[Machine] = []

    def _next_log(self) -> Path:
        return guests.log_path(f"{self.name}-{len(self.started)}")

    def boot(self, target: str, *, qemu_options: Sequence[str] = (), **options) -> Machine:
        """A guest on the harness's initramfs with the kexec the built wheel ships (see `guests.boot`)."""
        board = guests.BOARDS[target]
        machine = guests.boot(
            board,
            kexec_from_wheel(target),
            log=self._next_log(),
            workdir=self.workdir,
            qemu_options=[*guests.NO_RESET, *qemu_options],
            **options,
        )
        self.started.append(machine)
        return machine

    def start(self, target: str, *, qemu_options: Sequence[str] = (), **options) -> Machine:
        """A guest on any kernel and initrd (see `guests.start`)."""
        machine = guests.start(
            guests.BOARDS[target], log=self._next_log(), qemu_options=[*guests.NO_RESET, *qemu_options], **options
        )
        self.started.append(machine)
        return machine

    def stop(self) -> None:
        for machine in self.started:
            machine.close()


@pytest.fixture
def vm(request, tmp_path) -> Iterator[Guests]:
    """Start guests for one test; they are stopped after it."""
    started = Guests(request.node.name, tmp_path)
    yield started
    started.stop()
