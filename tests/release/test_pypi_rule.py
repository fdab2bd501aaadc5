"""PyPI's platform-tag rule, kept as data (recipes/pypi-platform-tags.toml), against the targets' tags."""

from __future__ import annotations

import pytest

from kexec_build import hook, release
from kexec_build.errors import RecipeError

RULE = release.pypi_rule()


@pytest.mark.parametrize(
    "platform",
    [
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
        "musllinux_1_1_x86_64",
        "manylinux_2_31_riscv64",
        "musllinux_1_2_riscv64",
        "manylinux_2_17_ppc64",
        "manylinux2014_ppc64",
        "manylinux2014_armv7l",
        "linux_armv7l",
    ],
)
def test_pypi_accepts(platform):
    assert RULE.accepts(platform)


@pytest.mark.parametrize(
    "platform",
    [
        # mips64 has no manylinux or musllinux on PyPI; ppc64 (big endian) only manylinux; a bare
        # linux_<arch> tag only for the armv6l/armv7l exceptions; manylinux2014 has no riscv64.
        "musllinux_1_1_mips64",
        "manylinux_2_17_mips64",
        "linux_mips64",
        "musllinux_1_1_ppc64",
        "linux_x86_64",
        "manylinux2014_riscv64",
        "manylinux_2_17_loongarch64",
    ],
)
def test_pypi_refuses(platform):
    assert not RULE.accepts(platform)


def test_every_target_but_mips64el_makes_a_wheel_pypi_accepts(recipe_set):
    names = {target.name: f"kexec_bin-1.0-{hook.wheel_tag(target)}.whl" for target in recipe_set.targets.values()}
    refused = {name: RULE.refused_tags(file_name) for name, file_name in names.items() if RULE.refused_tags(file_name)}
    assert refused == {"mips64el": ["linux_mips64", "musllinux_1_1_mips64"]}


def test_a_malformed_rule_file_is_refused_with_every_problem(tmp_path):
    (tmp_path / release.PYPI_RULE_FILE).write_text(
        'source = "http://example.invalid"\nstatic = "any"\nmusllinux-arch = ["x86_64"]\n'
    )
    with pytest.raises(RecipeError) as error:
        release.pypi_rule(tmp_path)
    message = str(error.value)
    for problem in (
        "source: expected the https URL",
        "static: expected a list",
        "manylinux-arches: missing",
        "musllinux-arch: unknown key (perhaps you meant 'musllinux-arches'?)",
    ):
        assert problem in message
