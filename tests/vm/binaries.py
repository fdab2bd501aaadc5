"""The kexec under test: the very binary the built wheel ships for a target.

A missing wheel is built through the toolkit (as `inv wheel --arch` does); the binary is then
taken out of the wheel, so the guests run exactly what users install.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

from kexec_build import hook, recipes, wheels
from kexec_build.paths import cache_dir, dist_dir


def wheel_for(target_name: str) -> Path:
    """The newest wheel in dist/ for `target_name`, built first if there is none."""
    recipe_set = recipes.load()
    target = recipe_set.target(target_name)
    release = recipe_set.release()
    found = sorted(dist_dir().glob(f"kexec_bin-{release.wheel_version}-*-{target.platform_tag}.whl"))
    if found:
        return found[-1]
    (built,) = wheels.build_wheels([target], release, outdir=dist_dir())
    return built


def kexec_from_wheel(target_name: str) -> Path:
    """The `kexec` inside `target_name`'s wheel, extracted once into the cache."""
    source = wheel_for(target_name)
    binary = cache_dir() / "vm" / "kexec" / source.stem / "kexec"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        binary.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(source) as archive, tempfile.NamedTemporaryFile(dir=binary.parent, delete=False) as out:
            out.write(archive.read(hook.BINARY))
        os.chmod(out.name, 0o755)
        os.replace(out.name, binary)
    return binary
