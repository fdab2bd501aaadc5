"""kexec-bin's commands: a thin layer over the kexec_build package (`inv --list`)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from invoke import Exit, task

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from kexec_build import errors, parallel, recipes
from kexec_build import fetch as fetching
from kexec_build.paths import build_dir, cache_dir, dist_dir

ARCH_HELP = "native (default), all, or a comma-separated list of targets from recipes/targets.toml"
PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider")
VERSION_HELP = "kexec-tools version from recipes/kexec-tools.toml (default: the recipe's default)"
MIRROR_HELP = (
    "base URL or folder holding the upstream tarball, tried before $KEXEC_BIN_MIRRORS and upstream; "
    "repeat it for several, tried in order"
)


def reports_errors(function):
    """Turn the toolkit's expected failures into a message and an exit code, without a traceback."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except errors.BuildError as error:
            raise Exit(f"error: {error}", code=error.exit_code) from None

    return wrapper


def _mirrors(mirror: list[str]) -> list[str]:
    return list(mirror) + fetching.mirrors_from_env()


@task(iterable=["mirror"], help={"version": VERSION_HELP, "mirror": MIRROR_HELP})
@reports_errors
def fetch(c, version=None, mirror=None):
    """Download and verify a kexec-tools tarball into the cache (--mirror repeatable)."""
    release = recipes.load().release(version)
    print(fetching.fetch(release, mirrors=_mirrors(mirror)))


@task(iterable=["mirror"], help={"arch": ARCH_HELP, "version": VERSION_HELP, "mirror": MIRROR_HELP})
@reports_errors
def build(c, arch="native", version=None, mirror=None):
    """Build a static, stripped, checked kexec for each chosen target (--mirror repeatable)."""
    recipe_set = recipes.load()
    release = recipe_set.release(version)
    targets = recipe_set.select_targets(arch, release)
    parallel.build_and_report(release, targets, recipe_set=recipe_set, mirrors=_mirrors(mirror))


@task(help={"cache": "also remove the download cache and the per-target sysroots (both in $KEXEC_BIN_CACHE)"})
def clean(c, cache=False):
    """Remove build outputs (and, with --cache, the download cache and the sysroots)."""
    import shutil

    for folder in [build_dir(), dist_dir()] + ([cache_dir()] if cache else []):
        shutil.rmtree(folder, ignore_errors=True)
        print(f"removed {folder}")
    if not cache:
        fetching.clean_partials()


@task(help={"arch": ARCH_HELP, "version": VERSION_HELP})
@reports_errors
def toolchain(c, arch="native", version=None):
    """Install the cross compilers and sysroots the chosen targets need."""
    from kexec_build import toolchain as toolchains

    recipe_set = recipes.load()
    toolchains.provision(recipe_set.select_targets(arch, recipe_set.release(version)), recipe_set)


@task(help={"output": "where to write the figures as JSON (default: build/bench.json)"})
@reports_errors
def bench(c, output=None):
    """Measure the speed and size goals as ratios in one run."""
    from kexec_build import bench as benchmark
    from kexec_build.vm.bench import netboot_rows, reboot_rows, story_reboot_rows, way_back_rows

    benchmark.run(
        Path(output) if output else build_dir() / "bench.json",
        extra=[reboot_rows, netboot_rows, story_reboot_rows, way_back_rows],
    )


@task(help={"arch": ARCH_HELP, "version": VERSION_HELP})
@reports_errors
def prove(c, arch="native", version=None):
    """Boot each target's Debian kernel in QEMU and kexec into the next with the wheel's kexec."""
    from kexec_build.vm import prove as proving

    recipe_set = recipes.load()
    release = recipe_set.release(version)
    proving.prove(recipe_set.select_targets(arch, release), release)


@task(
    iterable=["mirror"],
    help={
        "arch": ARCH_HELP,
        "version": VERSION_HELP,
        "mirror": MIRROR_HELP,
        "check_repro": (
            "build each wheel again from the sdist in a fresh folder and build tree; fail unless byte-identical"
        ),
    },
)
@reports_errors
def wheel(c, arch="native", version=None, mirror=None, check_repro=False):
    """Build one wheel per chosen target into dist/, and SHA256SUMS (--mirror repeatable)."""
    from kexec_build import wheels

    recipe_set = recipes.load()
    release = recipe_set.release(version)
    wheels.make_wheels(
        recipe_set.select_targets(arch, release),
        release,
        recipe_set=recipe_set,
        mirrors=_mirrors(mirror),
        dist=dist_dir(),
        check_repro=check_repro,
    )


@task(iterable=["mirror"], help={"version": VERSION_HELP, "mirror": MIRROR_HELP})
@reports_errors
def sdist(c, version=None, mirror=None):
    """Build the sdist, upstream tarball included, into dist/ (--mirror repeatable)."""
    from kexec_build import wheels

    wheels.make_sdist(recipes.load().release(version), mirrors=_mirrors(mirror), dist=dist_dir())


@task(iterable=["mirror"], help={"version": VERSION_HELP, "mirror": MIRROR_HELP})
@reports_errors
def release(c, version=None, mirror=None):
    """Make dist/ one checked release: wheels, sdist, static tarballs, manifest, SHA256SUMS."""
    from kexec_build import release as releasing

    recipe_set = recipes.load()
    chosen = recipe_set.release(version)
    targets = recipe_set.select_targets("all", chosen)
    releasing.make_release(targets, chosen, recipe_set=recipe_set, mirrors=_mirrors(mirror), dist=dist_dir())


@task
@reports_errors
def lint(c):
    """Run ruff and mypy on the code, actionlint and zizmor on .github/workflows."""
    from kexec_build import lint as linting

    linting.lint()


@task(help={"transcripts": "also run the dry runs whose output the docs show, and rewrite those blocks (default)"})
@reports_errors
def docs(c, transcripts=True):
    """Write the command reference and man pages (from the parsers), the module map, and the docs' transcripts."""
    from kexec_build import docs as documentation
    from kexec_build.commands import run

    for path in documentation.write():
        print(f"docs: wrote {path}")
    if transcripts:
        # The transcripts come from the real commands run on the tests' trees and images (tests/test_docs.py).
        run(*PYTEST, "tests/runtime/test_transcripts.py", "--update-docs", cwd=Path(__file__).resolve().parent)
    print("docs: current")


@task(help={"version": "the new kexec-tools release, e.g. 2.0.32"})
@reports_errors
def update(c, version):
    """Adopt a kexec-tools release verified through Debian's signed chain; wheels for all, prove x86_64."""
    from kexec_build import update as updating
    from kexec_build import wheels
    from kexec_build.vm import prove as proving

    release = updating.adopt(version)
    recipe_set = recipes.load()
    # Fresh wheels for every target (inv prove takes the x86_64 one from dist/, as CI hands it over).
    targets = recipe_set.select_targets("all", release)
    wheels.make_wheels(targets, release, recipe_set=recipe_set, mirrors=_mirrors([]), dist=dist_dir())
    proving.prove([recipe_set.target("x86_64")], release)
