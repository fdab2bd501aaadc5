"""Wheels and the sdist, made once per session the way `inv wheel` and `inv sdist` make them.

The binaries come from the project's build tree (a keyed cache: an unchanged build is a no-op),
the upstream tarball from the suite's verified `upstream_dir`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kexec_build import wheels
from kexec_build.commands import quiet
from kexec_build.testbed import trial


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dist")


@pytest.fixture(scope="session")
def native_wheel(upstream_dir, dist) -> Path:
    return trial.native_wheel(dist, mirrors=[str(upstream_dir)], log=quiet)


@pytest.fixture(scope="session")
def sdist(recipe_set, upstream_dir, dist) -> Path:
    return wheels.make_sdist(recipe_set.release(), mirrors=[str(upstream_dir)], dist=dist, log=quiet)


@pytest.fixture(scope="session")
def all_wheels(recipe_set, upstream_dir, dist) -> dict[str, Path]:
    """Every target's wheel of the default release (cross-built: needs `inv toolchain --arch all`)."""
    release = recipe_set.release()
    targets = recipe_set.select_targets("all", release)
    made = wheels.make_wheels(
        targets, release, recipe_set=recipe_set, mirrors=[str(upstream_dir)], dist=dist, log=quiet
    )
    return {target.name: path for target, path in zip(targets, made)}
