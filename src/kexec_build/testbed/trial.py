"""A wheel tried the way a user gets it: built from this checkout, pip-installed into a fresh venv."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .. import fetch, recipes, wheels
from ..commands import Log, run
from ..errors import WheelError


@dataclass(frozen=True)
class Venv:
    """A virtual environment holding one installed kexec-bin wheel."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def script(self, name: str) -> Path:
        """A console script the wheel installed (kexec, kexec-bin)."""
        return self.root / "bin" / name

    def bundled(self) -> Path:
        """Where pip put the bundled kexec."""
        found = sorted(self.root.glob("lib/python*/site-packages/kexec_bin/bin/kexec"))
        if not found:
            raise WheelError(f"no kexec_bin/bin/kexec under {self.root}: the wheel carries no binary")
        return found[0]


def native_wheel(dist: Path, *, mirrors: Sequence[str] | None = None, log: Log = print) -> Path:
    """This machine's wheel of the default release, made from the checkout as `inv wheel` makes it (the
    binary is reused when built): the one way the tests and the bench get the native wheel."""
    recipe_set = recipes.load()
    (made,) = wheels.make_wheels(
        [recipe_set.native_target()],
        recipe_set.release(),
        recipe_set=recipe_set,
        mirrors=fetch.mirrors_from_env() if mirrors is None else mirrors,
        dist=dist,
        log=log,
    )
    return made


def fresh_venv(folder: Path, wheel_file: Path) -> Venv:
    """A new venv in `folder` with `wheel_file` installed by pip and nothing else (no network)."""
    run(sys.executable, "-m", "venv", "--without-pip", folder, error=WheelError)
    venv = Venv(folder)
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        venv.python,
        "install",
        "--quiet",
        "--no-index",
        "--no-deps",
        wheel_file,
        error=WheelError,
    )
    return venv
