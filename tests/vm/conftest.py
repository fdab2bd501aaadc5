"""Fixtures of the VM proofs: the kexec under test and guests whose console logs are kept."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.vm import guests
from tests.vm.binaries import kexec_from_wheel
from tests.vm.machine import Machine


@pytest.fixture(scope="session")
def kexec_binary() -> Callable[[str], Path]:
    """target name -> the kexec binary the guests run (the one the built wheel ships)."""
    return kexec_from_wheel


class Guests:
    """The guests one test starts: each keeps its console log in build/vm-logs; all stop at the end."""

    def __init__(self, name: str, kexec_binary: Callable[[str], Path], workdir: Path) -> None:
        self.name = name
        self.kexec_binary = kexec_binary
        self.workdir = workdir
        self.started: list[Machine] = []

    def _next_log(self) -> Path:
        return guests.log_path(f"{self.name}-{len(self.started)}")

    def boot(self, target: str, **options) -> Machine:
        """A guest on the harness's initramfs with the kexec under test (see `guests.boot`)."""
        board = guests.BOARDS[target]
        machine = guests.boot(board, self.kexec_binary(target), log=self._next_log(), workdir=self.workdir, **options)
        self.started.append(machine)
        return machine

    def start(self, target: str, **options) -> Machine:
        """A guest on any kernel and initrd (see `guests.start`)."""
        machine = guests.start(guests.BOARDS[target], log=self._next_log(), **options)
        self.started.append(machine)
        return machine

    def stop(self) -> None:
        for machine in self.started:
            machine.close()


@pytest.fixture
def vm(request, kexec_binary, tmp_path) -> Iterator[Guests]:
    """Start guests for one test; they are stopped after it."""
    started = Guests(request.node.name, kexec_binary, tmp_path)
    yield started
    started.stop()
