"""Recipes: the real ones load; a malformed one is refused naming the file, the key and what was expected."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kexec_build import recipes
from kexec_build.errors import RecipeError


@pytest.fixture
def recipe_copy(tmp_path) -> Path:
    folder = tmp_path / "recipes"
    shutil.copytree(recipes.RECIPES_DIR, folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"test setup: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_real_recipes_hold_both_releases_and_eight_targets(recipe_set):
    assert recipe_set.default_version == "2.0.32"
    assert {"2.0.32", "2.0.25"} <= set(recipe_set.releases)
    assert len(recipe_set.targets) == 8
    assert recipe_set.release("2.0.32").wheel_version == "2.0.32.0"


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "kexec-tools.toml",
            'sha256 = "8f81',
            'sha256 = "XYZ',
            r"kexec-tools\.toml.*release\.'2\.0\.32'\.sha256: expected 64 lowercase hex digits, got 'XYZ",
        ),
        (
            "kexec-tools.toml",
            "build = 0",
            "biuld = 0",
            r"release\.'2\.0\.32'\.biuld: unknown key \(perhaps you meant 'build'\?\)",
        ),
        (
            "kexec-tools.toml",
            '"riscv64", "mips64el"]',
            '"riscv46", "mips64el"]',
            r"unknown target 'riscv46' \(perhaps you meant 'riscv64'\?\)",
        ),
        ("kexec-tools.toml", 'default = "2.0.32"', 'default = "9.9"', r"default: '9\.9' is not one of the releases"),
        ("kexec-tools.toml", 'default = "2.0.32"', "default = [", r"kexec-tools\.toml: not valid TOML"),
        (
            "kexec-tools.toml",
            "size = 325392\n",
            "",
            r"release\.'2\.0\.32'\.size: missing; expected the tarball's length in bytes",
        ),
        (
            "kexec-tools.toml",
            'source = "kexec-tools-{version}.tar.xz"',
            'source = "kexec-tools-{version}}.tar.xz"',
            r"source: expected a file name such as .*, got 'kexec-tools-\{version\}\}\.tar\.xz'",
        ),
        (
            "kexec-tools.toml",
            'source = "kexec-tools-{version}.tar.xz"',
            'source = "kexec-tools-{version}-{arch}.tar.xz"',
            r"source: expected a file name such as .*, got 'kexec-tools-\{version\}-\{arch\}\.tar\.xz'",
        ),
        (
            "targets.toml",
            'triplet = "aarch64-linux-gnu"\n',
            "",
            r"targets\.toml.*target\.aarch64\.triplet: missing; expected a GNU triplet",
        ),
        (
            "targets.toml",
            'machine = "EM_S390", class = 64, endian = "big"',
            'machine = "EM_S390", class = 65, endian = "middle"',
            r"elf\.class: expected 32 or 64, got 65(?s:.*)elf\.endian: expected 'little' or 'big', got 'middle'",
        ),
    ],
)
def test_malformed_recipe_is_refused_with_file_key_and_expectation(recipe_copy, file, old, new, message):
    edit(recipe_copy / file, old, new)
    with pytest.raises(RecipeError, match=f"(?s){message}"):
        recipes.load(recipe_copy)


def test_every_problem_is_reported_in_one_pass(recipe_copy):
    edit(recipe_copy / "kexec-tools.toml", "build = 0", "build = -1")
    edit(recipe_copy / "kexec-tools.toml", 'sha256 = "7ce2', 'sha256 = "7CE2')
    with pytest.raises(RecipeError, match=r"2 problem\(s\)"):
        recipes.load(recipe_copy)


def test_missing_recipe_file(recipe_copy):
    (recipe_copy / "targets.toml").unlink()
    with pytest.raises(RecipeError, match=r"targets\.toml: recipe file is missing"):
        recipes.load(recipe_copy)


def test_unknown_version_and_arch_name_the_choices(recipe_set):
    with pytest.raises(RecipeError, match=r"unknown kexec-tools version '2\.0\.99'.*2\.0\.32"):
        recipe_set.release("2.0.99")
    with pytest.raises(RecipeError, match=r"unknown arch 'arm65'.*choose one of native, all"):
        recipe_set.select_targets("arm65", recipe_set.release())


def test_an_unsupported_release_and_target_pair_is_refused(recipe_set):
    with pytest.raises(RecipeError, match=re.escape("kexec-tools 2.0.25 does not support riscv64")):
        recipe_set.select_targets("riscv64", recipe_set.release("2.0.25"))


def test_uname_values_select_their_target(recipe_set):
    assert recipe_set.target("mips64").name == "mips64el"
    assert recipe_set.target("i386").name == "i686"
