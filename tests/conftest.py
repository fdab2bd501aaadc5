"""Fixtures shared by the whole suite: the real upstream tarballs and a loopback mirror."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kexec_build import fetch, recipes
from kexec_build.paths import cache_dir

# Resolved once at import, before any test points KEXEC_BIN_CACHE at a temporary folder:
# the real tarballs are kept between runs here.
USER_CACHE = cache_dir()


@pytest.fixture(scope="session")
def httpserver_listen_address():
    """pytest-httpserver on the IPv4 loopback address, an ephemeral port."""
    return ("127.0.0.1", 0)


@pytest.fixture(scope="session")
def recipe_set() -> recipes.Recipes:
    """The project's real recipes."""
    return recipes.load()


@pytest.fixture(scope="session")
def upstream_dir(recipe_set) -> Path:
    """A folder holding every release's upstream tarball under its upstream file name.

    Upstream is unreachable from these machines; the tarballs come through the fetcher itself
    (its last resort is the distribution's byte-identical orig tarball) and are verified by the
    recipe's sha256, then kept in the user's cache between runs.
    """
    folder = USER_CACHE / "test-upstream"
    folder.mkdir(parents=True, exist_ok=True)
    for release in recipe_set.releases.values():
        wanted = folder / release.source
        if not wanted.exists():
            tarball = fetch.fetch(release, cache=USER_CACHE, retries=0, timeout=(3, 10))
            shutil.copyfile(tarball, wanted.with_suffix(".part"))
            wanted.with_suffix(".part").rename(wanted)
    return folder


@pytest.fixture
def mirror(httpserver, upstream_dir) -> str:
    """A real HTTP server on 127.0.0.1 serving the upstream tarballs; returns its base URL."""
    for tarball in upstream_dir.glob("*.tar.*"):
        httpserver.expect_request(f"/kexec/{tarball.name}").respond_with_data(
            tarball.read_bytes(), content_type="application/x-xz"
        )
    return httpserver.url_for("/kexec")


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """An empty cache and build tree for one test, with no mirrors from the environment."""
    monkeypatch.setenv("KEXEC_BIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KEXEC_BIN_BUILD", str(tmp_path / "build"))
    monkeypatch.delenv("KEXEC_BIN_MIRRORS", raising=False)
    return tmp_path


@pytest.fixture
def mounted(tmp_path):
    """Mount a tmpfs with the given options at a fresh folder (root only); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounts: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mount{len(mounts)}"
        point.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", str(point)], check=True)
