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


@pytest.fixture
def boot(request, kexec_binary, tmp_path) -> Iterator[Callable[..., Machine]]:
    """Start a guest of a target (see `guests.boot`); every guest is stopped after the test."""
    started: list[Machine] = []

    def start(target: str, **options) -> Machine:
        log = guests.log_path(f"{request.node.name}-{len(started)}")
        machine = guests.boot(guests.BOARDS[target], kexec_binary(target), log=log, workdir=tmp_path, **options)
        started.append(machine)
        return machine

    yield start
    for machine in started:
        machine.close()
