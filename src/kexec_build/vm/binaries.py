"""The kexec under test: the very binary the built wheel ships for a target.

Missing wheels are built through the toolkit (as `inv wheel --arch` does); the binary is then
taken out of the wheel, so the guests run exactly what users install.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

from .. import fetch, hook, recipes, wheels
from ..paths import PROJECT_ROOT, cache_dir, dist_dir
from ..recipes import Release

# What goes into a wheel: a wheel older than any of these files was made from other sources.
WHEEL_INPUTS = ("src", "recipes", "licenses", "hatch_build.py", "pyproject.toml", "LICENSE")


def wheels_for(target_names: Sequence[str], release: Release | None = None) -> dict[str, Path]:
    """The newest wheel in dist/ of `release` (default: the recipe's) for each target; the missing ones, and
    those older than the sources they are made from, built first (an old wheel would test old code)."""
    recipe_set = recipes.load()
    release = release or recipe_set.release()
    targets = [recipe_set.target(name) for name in target_names]
    newest = {target.name: _newest_wheel(target, release) for target in targets}
    found = {name: wheel for name, wheel in newest.items() if wheel is not None}
    missing = [target for target in targets if target.name not in found]
    if missing:
        built = wheels.make_wheels(
            missing, release, recipe_set=recipe_set, mirrors=fetch.mirrors_from_env(), dist=dist_dir()
        )
        found.update({target.name: path for target, path in zip(missing, built)})
    return {target.name: found[target.name] for target in targets}


def wheel_for(target_name: str, release: Release | None = None) -> Path:
    """The newest wheel in dist/ for `target_name`, built first if there is none."""
    return wheels_for([target_name], release)[target_name]


def _newest_wheel(target: recipes.Target, release: Release) -> Path | None:
    found = sorted(dist_dir().glob(f"kexec_bin-{release.wheel_version}-*-{target.platform_tag}.whl"))
    if not found or found[-1].stat().st_mtime < _sources_changed():
        return None
    return found[-1]


def _sources_changed() -> float:
    """When a file that goes into a wheel last changed (compiled bytecode aside: running the tests writes it)."""
    newest = 0.0
    for name in WHEEL_INPUTS:
        top = PROJECT_ROOT / name
        files = [top] if top.is_file() else (path for path in top.rglob("*") if "__pycache__" not in path.parts)
        newest = max([newest, *(path.stat().st_mtime for path in files if path.is_file())])
    return newest


def kexec_from_wheel(target_name: str, release: Release | None = None) -> Path:
    """The `kexec` inside `target_name`'s wheel, extracted once into the cache."""
    return extract_kexec(wheel_for(target_name, release))


def extract_kexec(source: Path) -> Path:
    """The `kexec` inside the wheel `source`, extracted once into the cache."""
    binary = cache_dir() / "vm" / "kexec" / source.stem / "kexec"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        binary.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(source) as archive, tempfile.NamedTemporaryFile(dir=binary.parent, delete=False) as out:
            out.write(archive.read(hook.BINARY))
        os.chmod(out.name, 0o755)
        os.replace(out.name, binary)
    return binary
