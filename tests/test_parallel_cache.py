"""The user cache filled by two test processes at once (`pytest -n 2` on an empty cache): each fixture that
unpacks or copies into it finishes, whoever comes second keeps the first one's copy, and no half-made entry
or temporary folder is left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from kexec_build.paths import PROJECT_ROOT
from kexec_build.testbed import debian_packages

UNPACK = "from kexec_build.testbed.debian_packages import unpacked; print(unpacked('kexec-tools'))"


@pytest.mark.network  # kexec-tools' .deb comes from the archive on an empty cache
def test_three_processes_unpacking_one_package_at_once_all_get_the_tree(tmp_path):
    deb = debian_packages.deb("kexec-tools")
    cache = tmp_path / "cache"
    folder = cache / deb.parent.relative_to(debian_packages.CACHE)
    folder.mkdir(parents=True)
    shutil.copyfile(deb, folder / deb.name)  # the .deb is cached, its tree not yet
    env = {**os.environ, "KEXEC_BIN_CACHE": str(cache), "PYTHONPATH": str(PROJECT_ROOT / "src")}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", UNPACK], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [(child.wait(timeout=120), *child.communicate()) for child in children]
    tree = folder / deb.with_suffix(".tree").name
    for status, out, err in results:
        assert (status, out.strip()) == (0, str(tree)), err
    assert sorted(entry.name for entry in folder.iterdir()) == sorted([deb.name, tree.name])
    assert (tree / "sbin/kexec").is_file()
