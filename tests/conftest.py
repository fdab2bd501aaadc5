"""Fixtures shared by the whole suite: the real upstream tarballs, a loopback mirror, and the fast loop's
tripwire (a selection without `build`, `cross` or `vm` tests calls no compiler and no qemu-user)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from kexec_build import atomic, fetch, recipes
from kexec_build.paths import cache_dir

# Resolved once at import, before any test points KEXEC_BIN_CACHE at a temporary folder:
# the real tarballs are kept between runs here.
USER_CACHE = cache_dir()


# The markers of tests that may compile or run a cross tool; a selection without any of them is the fast loop.
COMPILING_MARKERS = ("build", "cross", "vm")
NATIVE_COMPILERS = re.compile(r"(cc|c\+\+|gcc|g\+\+|clang|clang\+\+)(-[0-9.]+)?")


def tripwired(name: str, native_triplet: str, cross_triplets: set[str]) -> bool:
    """A program the fast loop must never call: a native or cross compiler (or cross binutils), or qemu-user."""
    if name.startswith(f"{native_triplet}-"):
        return bool(NATIVE_COMPILERS.fullmatch(name.removeprefix(f"{native_triplet}-")))
    return (
        bool(NATIVE_COMPILERS.fullmatch(name))
        or name.startswith(tuple(f"{triplet}-" for triplet in cross_triplets))
        or (name.startswith("qemu-") and name.endswith("-static"))
    )


def tripwires(folder: Path, record: Path) -> list[str]:
    """A tripwire in `folder` for each such program on PATH: it appends its call to `record` and exits 127."""
    recipe_set = recipes.load()
    native = recipe_set.native_target()
    cross_triplets = {target.triplet for target in recipe_set.targets.values() if target.triplet != native.triplet}
    names = {
        entry.name
        for directory in os.environ["PATH"].split(os.pathsep)
        if os.path.isdir(directory)
        for entry in os.scandir(directory)
        if tripwired(entry.name, native.triplet, cross_triplets)
    }
    for name in names:
        (folder / name).write_text(f'#!/bin/sh\necho "$0 $*" >> {record}\nexit 127\n')
        (folder / name).chmod(0o755)
    return sorted(names)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-docs",
        action="store_true",
        help="write the commands' real output into the docs' transcripts instead of comparing (`inv docs` does)",
    )


# Fixtures that download from the Debian package archive into an empty cache: Debian's kernel, kexec-tools and
# installer, the upstream tarball (its last source is Debian's orig tarball), images made of Debian packages.
# A test using one is marked `network`; tests that download in their own body carry the marker themselves.
# Found by running the fast loop with an empty KEXEC_BIN_CACHE in a network namespace holding only loopback
# (`unshare -n`): there `-m "not network"` passes, see tests/README.md.
ARCHIVE_FIXTURES = frozenset(
    {
        "debian_kernel",
        "debian_kexec",
        "kexec_tools_headers",
        "upstream_dir",
        "real_files",
        "real_chain",
        "packages",
        "loopback_iso",
        "isolinux_iso",
    }
)


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if ARCHIVE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.network)


@pytest.fixture(scope="session", autouse=True)
def fast_loop_tripwires(request, tmp_path_factory) -> Iterator[Path | None]:
    """In a selection without `build`, `cross` or `vm` tests, every compiler and qemu-user on PATH is shadowed
    by a tripwire for the whole run, so each marker means what it says (`no_compiler_called` fails a test
    that called one). Other selections run with the real PATH; this yields None there."""
    selected = request.session.items
    if any(item.get_closest_marker(marker) for item in selected for marker in COMPILING_MARKERS):
        yield None
        return
    folder = tmp_path_factory.mktemp("tripwires")
    record = folder / "called"
    tripwires(folder, record)
    saved = os.environ["PATH"]
    os.environ["PATH"] = f"{folder}{os.pathsep}{saved}"
    try:
        yield record
    finally:
        os.environ["PATH"] = saved


@pytest.fixture(autouse=True)
def no_compiler_called(fast_loop_tripwires) -> Iterator[None]:
    """Fails the test (at teardown) that called a tripwired program, naming the calls."""
    yield
    if fast_loop_tripwires is not None and fast_loop_tripwires.exists():
        calls = fast_loop_tripwires.read_text()
        fast_loop_tripwires.unlink()
        pytest.fail(f"a test outside the build, cross and vm markers called a compiler or qemu-user:\n{calls}")


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
            atomic.copy_file(tarball, wanted)  # its temporary name is per process: pytest -n 2 runs this twice
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
