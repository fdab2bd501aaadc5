"""`inv release` on this machine: the full set in dist/, checked as PyPI and pip would check it.

Every target is built (cross toolchains and qemu-user: marked `cross`); the builds themselves are
keyed, so a warm build tree makes this a matter of packaging.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from kexec_build import fetch, hook, release, wheels
from kexec_build.commands import run
from kexec_build.paths import DIST_ENV, PROJECT_ROOT
from tests.inv import inv
from tests.wheel.debian_hosts import supported_tags
from tests.wheel.wheel_files import tool

pytestmark = [pytest.mark.build, pytest.mark.cross]  # inv release builds every target's wheel


@pytest.fixture(scope="module")
def released(tmp_path_factory, upstream_dir) -> Path:
    dist = tmp_path_factory.mktemp("release") / "dist"
    # A wheel of another version left in dist/ must not end up in the release.
    dist.mkdir()
    (dist / "kexec_bin-0.1.0-py3-none-any.whl").write_bytes(b"stale")
    result = inv("release", env={**os.environ, DIST_ENV: str(dist), fetch.MIRRORS_ENV: str(upstream_dir)})
    assert result.returncode == 0, result.stdout + result.stderr
    return dist


@pytest.fixture(scope="module")
def manifest(released) -> dict:
    return json.loads((released / release.MANIFEST).read_text())


def test_dist_holds_exactly_the_release_and_sha256sums_covers_it(released, recipe_set):
    default = recipe_set.release()
    targets = recipe_set.select_targets("all", default)
    files = sorted(path.name for path in released.iterdir() if path.is_file())
    assert len([name for name in files if name.endswith(".whl")]) == len(targets) == 8
    assert [name for name in files if name.endswith(".tar.gz")] == [f"kexec_bin-{default.wheel_version}.tar.gz"]
    assert sorted(name for name in files if name.endswith("-static.tar.xz")) == sorted(
        release.static_tarball_name(default, target) for target in targets
    )
    listed = run("sha256sum", "-c", wheels.SUMS, cwd=released).stdout.splitlines()
    assert sorted(line.removesuffix(": OK") for line in listed) == sorted(set(files) - {wheels.SUMS})


def test_the_manifest_sends_every_pypi_accepted_file_to_pypi_and_mips64el_to_github_only(released, manifest):
    rule = release.pypi_rule()
    to_pypi = sorted(entry["file"] for entry in manifest["files"] if entry["pypi"])
    assert sorted(path.name for path in (released / release.PYPI_FOLDER).iterdir()) == to_pypi
    for name in to_pypi:
        if name.endswith(".whl"):
            assert rule.refused_tags(name) == [], name
    held_back = {entry["target"] for entry in manifest["files"] if entry["kind"] == "wheel" and not entry["pypi"]}
    assert held_back == {"mips64el"}
    assert not any(entry["pypi"] for entry in manifest["files"] if entry["kind"] == "static")
    assert manifest["pypi-platform-rule"] == rule.source


def test_twine_and_check_wheel_contents_accept_the_release(released):
    distributions = sorted([*released.glob("*.whl"), *released.glob("*.tar.gz")])
    run(tool("twine"), "check", "--strict", *distributions)
    run(tool("check-wheel-contents"), *[path for path in distributions if path.suffix == ".whl"])


def test_pip_on_mips64el_falls_back_to_the_sdist_from_pypi_and_takes_the_wheel_from_the_github_set(
    released, recipe_set, tmp_path
):
    # The platforms pip accepts on a mips64el host: asked of Debian's own python3 for mips64el under qemu-user.
    platforms = sorted({tag.platform for tag in supported_tags(recipe_set.target("mips64el"))})
    wanted = f"kexec-bin=={recipe_set.release().wheel_version}"

    def download(index: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        """pip download from `index` as on a mips64el host: its outcome and the files it fetched."""
        folder = tmp_path / f"{index.name}-{len(options)}"
        command = [
            tool("pip"),
            "download",
            "--no-index",
            "--find-links",
            index,
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--dest",
            folder,
            *[f"--platform={p}" for p in platforms],
            *options,
            wanted,
        ]
        result = subprocess.run([str(part) for part in command], capture_output=True, text=True)
        return result, sorted(path.name for path in folder.glob("*"))

    from_pypi, fetched = download(released / release.PYPI_FOLDER)
    assert from_pypi.returncode == 0, from_pypi.stderr
    assert fetched == [f"kexec_bin-{recipe_set.release().wheel_version}.tar.gz"]
    wheels_only, _ = download(released / release.PYPI_FOLDER, "--only-binary=:all:")
    assert wheels_only.returncode != 0
    assert "No matching distribution" in wheels_only.stderr
    from_github, fetched = download(released, "--only-binary=:all:")
    assert from_github.returncode == 0, from_github.stderr
    (name,) = fetched
    assert {tag.platform for tag in parse_wheel_filename(name)[3]} & set(platforms)


def test_static_tarballs_unpack_to_binaries_that_run_under_qemu_user(released, recipe_set, tmp_path):
    default = recipe_set.release()
    epoch = hook.source_date_epoch(fetch.fetch(default, mirrors=[]))
    for target in recipe_set.select_targets("all", default):
        tarball = released / release.static_tarball_name(default, target)
        run("tar", "-xJf", tarball, "-C", tmp_path)
        folder = tmp_path / tarball.name.removesuffix(".tar.xz")
        assert sorted(path.name for path in folder.iterdir()) == ["COPYING", "kexec", "kexec-bin.cdx.json"]
        assert (folder / "COPYING").read_bytes() == (PROJECT_ROOT / hook.kexec_tools_license(default)).read_bytes()
        ran = run(target.qemu, folder / "kexec", "--version")
        assert f"kexec-tools {default.version}" in ran.stdout + ran.stderr
        with tarfile.open(tarball) as archive:
            assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in archive} == {(0, 0, "root", "root", epoch)}


def test_a_static_tarball_is_the_same_bytes_when_made_again(released, recipe_set, tmp_path):
    default = recipe_set.release()
    target = recipe_set.target("aarch64")
    (source,) = released.glob(f"kexec_bin-*-{target.platform_tag}.whl")
    shipped = released / release.static_tarball_name(default, target)
    os.utime(source, (0, 0))  # the tarball takes no time from the wheel file or the clock
    again = release.write_static_tarball(
        source, tmp_path / shipped.name, hook.source_date_epoch(fetch.fetch(default, mirrors=[]))
    )
    assert again.read_bytes() == shipped.read_bytes()
