"""What the build hook decides before any wheel is made: tags, release, target, licenses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile

import pytest
from packaging.tags import Tag, parse_tag

from kexec_build import bundled, hook
from kexec_build.errors import BuildError, RecipeError, WheelError
from kexec_build.paths import PROJECT_ROOT
from tests.inv import inv
from tests.wheel.wheel_files import platform_arch


def test_every_target_tag_is_any_python_no_abi_and_its_own_cpu(recipe_set):
    for target in recipe_set.targets.values():
        tags = parse_tag(hook.wheel_tag(target))
        assert tags == {Tag("py3", "none", platform) for platform in target.wheel_tags}
        for platform in target.wheel_tags:
            assert recipe_set.target(platform_arch(platform, target)) == target


def test_each_release_maps_to_its_wheel_version_and_back(recipe_set):
    for release in recipe_set.releases.values():
        assert hook.release_of(recipe_set, release.wheel_version) == release
    with pytest.raises(WheelError, match=r"kexec-bin 9\.9\.9\.0 matches no release .*2\.0\.32\.0"):
        hook.release_of(recipe_set, "9.9.9.0")


def test_the_version_environment_variable_chooses_the_release(recipe_set, monkeypatch):
    monkeypatch.setenv(hook.VERSION_ENV, "2.0.25")
    assert hook.chosen_release(recipe_set).version == "2.0.25"
    monkeypatch.delenv(hook.VERSION_ENV)
    assert hook.chosen_release(recipe_set) == recipe_set.release()
    monkeypatch.setenv(hook.VERSION_ENV, "2.0.99")
    with pytest.raises(RecipeError, match=re.escape("unknown kexec-tools version '2.0.99'")):
        hook.chosen_release(recipe_set)


def test_the_arch_environment_variable_names_exactly_one_target(recipe_set, monkeypatch):
    release = recipe_set.release()
    monkeypatch.delenv(hook.ARCH_ENV, raising=False)
    assert hook.chosen_target(recipe_set, release) == recipe_set.native_target()
    monkeypatch.setenv(hook.ARCH_ENV, "aarch64")
    assert hook.chosen_target(recipe_set, release).name == "aarch64"
    monkeypatch.setenv(hook.ARCH_ENV, "all")
    with pytest.raises(
        WheelError,
        match=rf"names {len(release.targets)} targets, and a wheel holds one binary: use `inv wheel --arch all`",
    ):
        hook.chosen_target(recipe_set, release)
    monkeypatch.setenv(hook.ARCH_ENV, "arm64")
    with pytest.raises(RecipeError, match="unknown arch 'arm64'"):
        hook.chosen_target(recipe_set, release)


def test_each_release_has_its_reviewed_copying_byte_for_byte(recipe_set, upstream_dir, tmp_path):
    for release in recipe_set.releases.values():
        with tarfile.open(upstream_dir / release.source) as archive:
            archive.extract(f"kexec-tools-{release.version}/COPYING", tmp_path, filter="data")
        copying = tmp_path / f"kexec-tools-{release.version}" / "COPYING"
        hook.check_license(PROJECT_ROOT, release, copying)
        assert hook.license_files(release) == [
            "LICENSE",
            f"licenses/kexec-tools-{release.version}/COPYING",
            "licenses/syslinux-6.04/COPYING",
            "licenses/debian-archive-keyring-2023.3/copyright",
        ]


@pytest.mark.network  # Debian packages, downloaded into an empty cache
def test_each_bundled_file_has_its_reviewed_license_byte_for_byte_and_a_changed_one_stops_the_wheel(tmp_path):
    for item in bundled.load():
        item.check_license(PROJECT_ROOT)  # against `copying` in the verified orig tarball
        root = tmp_path / item.name
        with pytest.raises(BuildError, match=rf"{item.license_file} is missing; review it, then: tar -xOf \S+"):
            item.check_license(root)
        recorded = root / item.license_file
        recorded.parent.mkdir(parents=True)
        recorded.write_text("an older text\n")
        with pytest.raises(
            BuildError, match=rf"{item.license_file} differs from {item.copying} in \S+\.tar\.\w+; review it"
        ):
            item.check_license(root)


def test_a_missing_or_changed_copying_stops_the_wheel_with_the_fix(recipe_set, tmp_path):
    release = recipe_set.release()
    copying = tmp_path / "COPYING"
    copying.write_text("GNU GENERAL PUBLIC LICENSE, as upstream ships it\n")
    root = tmp_path / "project"
    missing = (
        rf"licenses/kexec-tools-{release.version}/COPYING is missing .*: review it, then: mkdir -p .* && cp {copying} "
    )
    with pytest.raises(WheelError, match=missing):
        hook.check_license(root, release, copying)
    recorded = root / hook.kexec_tools_license(release)
    recorded.parent.mkdir(parents=True)
    recorded.write_text("an older text\n")
    with pytest.raises(
        WheelError, match=r"differs from the COPYING in kexec-tools .*upstream changed its license text"
    ):
        hook.check_license(root, release, copying)
    recorded.write_bytes(copying.read_bytes())
    hook.check_license(root, release, copying)


def test_a_bad_choice_ends_python_m_build_with_the_reason_and_no_traceback(tmp_path):
    environ = {**os.environ, hook.VERSION_ENV: "1.0"}
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(PROJECT_ROOT)],
        capture_output=True,
        text=True,
        env=environ,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "kexec-bin: unknown kexec-tools version '1.0': recipes/kexec-tools.toml has" in output
    assert "Traceback" not in output
    assert not list(tmp_path.iterdir())


def test_inv_wheel_and_sdist_refuse_bad_choices_with_the_reason():
    for args, expected in (
        (["wheel", "--arch", "arm64"], "unknown arch 'arm64'"),
        (["sdist", "--version", "2.0.99"], "unknown kexec-tools version '2.0.99'"),
    ):
        result = inv(*args)
        assert result.returncode == RecipeError.exit_code, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr


def test_a_bad_bundled_recipe_is_refused_with_every_problem_at_once(tmp_path):
    (tmp_path / "bundled.toml").write_text(
        '[memdisk]\npackage = "syslinux-common"\nsha265 = "f7e4"\nmember-sha256 = "F7E4"\n'
        'source = { package = "syslinux" }\n'
    )
    with pytest.raises(RecipeError) as refused:
        bundled.load(tmp_path)
    message = str(refused.value)
    assert "memdisk.sha265: unknown key (perhaps you meant 'sha256'?)" in message
    assert "memdisk.sha256: missing; expected a sha256 (64 lowercase hex digits)" in message
    assert "memdisk.member-sha256: expected a sha256 (64 lowercase hex digits), got 'F7E4'" in message
    assert "memdisk.source: expected { package = NAME, FILE = SHA256, ... }, got {'package': 'syslinux'}" in message
