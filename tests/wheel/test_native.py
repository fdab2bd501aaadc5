"""This machine's wheel and the sdist: contents, a fresh install, reproducibility, the offline source build."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.tags import sys_tags
from packaging.utils import parse_wheel_filename

from kexec_build import bundled, fetch, hook, pipeline, sbom, toolchain, wheels
from kexec_build.commands import quiet, run
from kexec_build.paths import PROJECT_ROOT
from kexec_build.testbed import netboot_mirror
from tests.wheel.wheel_files import dist_info, member, tool

pytestmark = pytest.mark.build


def test_pip_on_this_host_accepts_the_native_wheel(native_wheel):
    _, _, _, tags = parse_wheel_filename(native_wheel.name)
    assert tags & set(sys_tags())


def test_twine_accepts_the_sdist(sdist):
    run(tool("twine"), "check", "--strict", sdist)


def test_metadata_names_both_licenses_and_ships_their_texts(native_wheel, recipe_set):
    release = recipe_set.release()
    info = dist_info(native_wheel)
    metadata = member(native_wheel, f"{info}/METADATA").decode()
    assert "License-Expression: MIT AND GPL-2.0-only" in metadata.splitlines()
    assert f"Version: {release.wheel_version}" in metadata.splitlines()
    for path in hook.license_files(release):
        assert f"License-File: {path}" in metadata.splitlines()
        assert member(native_wheel, f"{info}/licenses/{path}") == (PROJECT_ROOT / path).read_bytes()
    built = pipeline.build(release, toolchain.for_target(recipe_set.native_target(), recipe_set), log=quiet)
    assert member(native_wheel, f"{info}/licenses/{hook.kexec_tools_license(release)}") == built.copying.read_bytes()


def test_the_sbom_is_valid_cyclonedx_and_names_what_went_into_the_binary(native_wheel, recipe_set):
    release = recipe_set.release()
    text = member(native_wheel, f"{dist_info(native_wheel)}/sboms/{sbom.FILE_NAME}").decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    built = pipeline.build(release, toolchain.for_target(recipe_set.native_target(), recipe_set), log=quiet)
    info = built.read_info()
    components = {component["name"]: component for component in document["components"]}
    kexec = components["kexec-tools"]
    assert kexec["version"] == release.version
    assert kexec["externalReferences"][0]["url"] == release.urls[0]
    assert kexec["externalReferences"][0]["hashes"][0]["content"] == release.sha256
    assert kexec["hashes"][0]["content"] == sbom.sha256_of(built.binary)
    assert [patch["diff"]["url"] for patch in kexec.get("pedigree", {}).get("patches", [])] == [
        p.name for p in release.patches
    ]
    assert {name: components[name]["version"] for name in ("glibc", "xz", "zlib")} == info["libraries"]
    assert all(info["libraries"].values())
    (compiler,) = document["formulation"][0]["components"]
    assert compiler["description"] == info["compiler"]
    assert document["metadata"]["component"]["version"] == release.wheel_version


def test_the_wheel_ships_debians_archive_keyring_as_the_sbom_records_it(native_wheel, tmp_path):
    (keyring,) = [item for item in bundled.load() if item.name == "debian-archive-keyring"]
    shipped = member(native_wheel, keyring.wheel_path)
    document = json.loads(member(native_wheel, f"{dist_info(native_wheel)}/sboms/{sbom.FILE_NAME}"))
    (component,) = [c for c in document["components"] if c["name"] == keyring.package]
    assert component["version"] == keyring.version
    assert component["hashes"][0]["content"] == hashlib.sha256(shipped).hexdigest() == keyring.member_sha256
    assert {ref["url"]: ref["hashes"][0]["content"] for ref in component["externalReferences"]} == keyring.source_files
    subprocess.run(["dpkg-deb", "-x", keyring.deb(), tmp_path / "package"], check=True)
    assert (tmp_path / "package/usr/share/keyrings/debian-archive-keyring.gpg").read_bytes() == shipped
    # It does its job: the archive's real InRelease verifies against it.
    (tmp_path / "keyring.gpg").write_bytes(shipped)
    (tmp_path / "InRelease").write_bytes(netboot_mirror.files("bookworm", "amd64")["dists/bookworm/InRelease"])
    run("gpgv", "--keyring", tmp_path / "keyring.gpg", tmp_path / "InRelease")


def test_every_member_carries_the_release_date(native_wheel, sdist, recipe_set):
    tarball = fetch.cached_path(recipe_set.release())
    with tarfile.open(tarball) as archive:
        newest = max(entry.mtime for entry in archive)
    released = datetime.fromtimestamp(newest, timezone.utc)
    in_zip = released.replace(second=released.second // 2 * 2)  # zip (DOS) times count in 2-second steps
    with zipfile.ZipFile(native_wheel) as archive:
        assert {entry.date_time for entry in archive.infolist()} == {in_zip.timetuple()[:6]}
    with tarfile.open(sdist) as archive:
        assert {entry.mtime for entry in archive} == {newest}


def test_the_native_wheel_gives_working_commands_in_a_fresh_venv(native_wheel, recipe_set, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "pip", "install", "--no-index", "--disable-pip-version-check", native_wheel)
    environ = {**os.environ, "KEXEC_BIN_PREFER": "bundled"}
    version = run(venv / "bin" / "kexec", "--version", env=environ)
    assert f"kexec-tools {recipe_set.release().version}" in version.stdout + version.stderr
    which = run(venv / "bin" / "kexec-bin", "which", env=environ)
    assert str(venv) in which.stdout


def test_rebuilt_from_the_sdist_in_another_folder_the_wheel_is_byte_identical(native_wheel, recipe_set, upstream_dir):
    wheels.check_reproducible(
        [native_wheel], [recipe_set.native_target()], recipe_set.release(), mirrors=[str(upstream_dir)], log=quiet
    )


def test_python_m_build_makes_the_same_sdist_and_wheel(native_wheel, sdist, upstream_dir, tmp_path):
    # Its default path: the sdist first, then the wheel from that sdist, unpacked elsewhere.
    environ = {key: value for key, value in os.environ.items() if not key.startswith("KEXEC_BIN_")}
    environ["KEXEC_BIN_MIRRORS"] = str(upstream_dir)
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", tmp_path, PROJECT_ROOT, env=environ)
    assert (tmp_path / sdist.name).read_bytes() == sdist.read_bytes()
    assert (tmp_path / native_wheel.name).read_bytes() == native_wheel.read_bytes()


def test_a_changed_member_is_named_as_the_difference(native_wheel, tmp_path):
    changed = tmp_path / native_wheel.name
    with zipfile.ZipFile(native_wheel) as source, zipfile.ZipFile(changed, "w") as copy:
        for entry in source.infolist():
            data = source.read(entry)
            copy.writestr(entry, data + b"/build/path" if entry.filename == hook.BINARY else data)
    assert wheels.differences(native_wheel, changed) == [f"{hook.BINARY}: content differs (build paths in the binary?)"]
    assert wheels.differences(native_wheel, native_wheel) == []


def test_the_sdist_carries_the_source_and_pip_builds_it_offline(sdist, native_wheel, recipe_set, tmp_path):
    release = recipe_set.release()
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames()}
        top = archive.getnames()[0].split("/")[0]
        carried = archive.extractfile(f"{top}/{hook.BUNDLED_SOURCES}/{release.source}")
        assert carried is not None, "the bundled tarball is not a regular file"
        tarball = carried.read()
    assert hashlib.sha256(tarball).hexdigest() == release.sha256
    for needed in (
        "hatch_build.py",
        "pyproject.toml",
        "PKG-INFO",
        "LICENSE",
        hook.kexec_tools_license(release),
        "recipes/kexec-tools.toml",
        "recipes/targets.toml",
        "src/kexec_build/pipeline.py",
        "src/kexec_bin/shim.py",
    ):
        assert needed in names
    # No network at all (a fresh network namespace), an empty download cache, and pip's own
    # build backend from this venv: the source can only come from inside the sdist.
    assert shutil.which("unshare"), "unshare (util-linux) is needed to cut the network"
    target = tmp_path / "installed"
    environ = {**os.environ, "KEXEC_BIN_CACHE": str(tmp_path / "empty-cache")}
    environ.pop("KEXEC_BIN_MIRRORS", None)
    environ.pop("KEXEC_BIN_BUILD", None)
    run(
        "unshare",
        "--net",
        tool("pip"),
        "install",
        "--no-index",
        "--no-build-isolation",
        "--no-deps",
        "--disable-pip-version-check",
        "--no-cache-dir",
        "--target",
        target,
        sdist,
        env=environ,
    )
    installed = target / hook.BINARY
    assert os.access(installed, os.X_OK)
    assert installed.read_bytes() == member(native_wheel, hook.BINARY)
    for item in bundled.for_target(recipe_set.native_target().name):  # from the sdist's packages, offline
        assert (target / item.wheel_path).read_bytes() == member(native_wheel, item.wheel_path)
    ran = subprocess.run([installed, "--version"], capture_output=True, text=True)
    assert f"kexec-tools {release.version}" in ran.stdout + ran.stderr


def test_the_sdist_carries_the_debian_packages_of_the_bundled_files_and_their_sources(sdist):
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        carried = {
            Path(name).name: archive.extractfile(name)
            for name in archive.getnames()
            if name.startswith(f"{top}/{hook.BUNDLED_SOURCES}/")
        }
        digests = {name: hashlib.sha256(file.read()).hexdigest() for name, file in carried.items() if file}
    for item in bundled.load():
        assert digests[item.deb_name] == item.sha256
        for name, digest in item.source_files.items():  # .dsc, orig and Debian tarballs
            assert digests[name] == digest


def test_sha256sums_lists_every_artifact_in_dist(native_wheel, sdist, dist):
    listed = run("sha256sum", "--check", "--strict", wheels.SUMS, cwd=dist).stdout
    assert f"{native_wheel.name}: OK" in listed and f"{sdist.name}: OK" in listed
    assert len(listed.splitlines()) == len([*dist.glob("*.whl"), *dist.glob("*.tar.gz")])
