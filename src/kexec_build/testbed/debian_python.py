"""Debian's python3 of another CPU, with its C library, unpacked into a tree of the user's cache.

The packages come from the host's own archive through a private apt root (`kexec_build.apt`) and are
unpacked with `dpkg-deb -x`, nothing installed. The tree runs under `qemu-<arch>-static -L` (the
wheel tests) or becomes part of a guest's initramfs (`kexec_build.vm.python_guest`).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from ..apt import apt_root
from ..commands import run
from ..errors import ToolchainError
from ..recipes import Target
from ..sysroot import candidate_suites
from .debian_packages import CACHE

# What the interpreter needs besides its own packages (python3.X-minimal, libpython3.X-minimal and
# -stdlib: the runtime's json and argparse live in the last).
RUNTIME = ("libc6", "libgcc-s1", "zlib1g", "libexpat1")


def python_root(target: Target) -> tuple[Path, str]:
    """A tree holding `target`'s Debian libc and python3 (from the first suite that has them), and python3.X's name."""
    problems = []
    for suite in candidate_suites():
        tree = CACHE / "debian-hosts" / f"{suite}-{target.debian_arch}"
        if (tree / ".complete").exists():
            return tree, (tree / ".complete").read_text()
        apt = apt_root(target.debian_arch, suite)
        tree.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tree.parent) as scratch:
            try:
                (meta,) = apt.download(["python3-minimal"], Path(scratch) / "meta")
            except ToolchainError as error:
                problems.append(f"{suite}: {error}")
                continue
            depends = run("dpkg-deb", "-f", meta, "Pre-Depends", "Depends").stdout
            minimal = re.search(r"\b(python3\.\d+)-minimal\b", depends)
            assert minimal, f"python3-minimal depends on no python3.X-minimal: {depends}"
            python = minimal.group(1)
            partial = Path(scratch) / "tree"
            interpreter = [f"{python}-minimal", f"lib{python}-minimal", f"lib{python}-stdlib"]
            for deb in apt.download([*RUNTIME, *interpreter], Path(scratch) / "debs"):
                run("dpkg-deb", "-x", deb, partial)
            _settle(partial)
            (partial / ".complete").write_text(python)
            partial.rename(tree)
        return tree, python
    raise ToolchainError(f"no suite has python3 for {target.debian_arch}:\n" + "\n".join(problems))


def _settle(tree: Path) -> None:
    """Make the unpacked tree whole on its own, as qemu-user -L needs it: absolute links point
    into the tree, and a usr-merged suite gets its /lib, /lib64 and /bin links."""
    for link in [path for path in tree.rglob("*") if path.is_symlink()]:
        target = os.readlink(link)
        if target.startswith("/"):
            link.unlink()
            link.symlink_to(os.path.relpath(tree / target.lstrip("/"), link.parent))
    for name in ("bin", "lib", "lib64"):
        if not (tree / name).exists() and (tree / "usr" / name).is_dir():
            (tree / name).symlink_to(f"usr/{name}")
