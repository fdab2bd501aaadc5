"""Cross-build fixtures: every target's toolchain, provisioned once in the user's cache."""

from __future__ import annotations

import pytest

from kexec_build import toolchain


@pytest.fixture(scope="session")
def toolchains(recipe_set) -> dict:
    """Every target's toolchain, provisioned as `inv toolchain --arch all` does (kept between runs)."""
    return toolchain.provision(list(recipe_set.targets.values()), recipe_set, log=lambda line: None)
