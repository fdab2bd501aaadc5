"""recipe → source → static kexec: the build of one release for one target, top to bottom.

A build whose key (release entry and patches, target, toolchain, flags, this pipeline) is
unchanged, and whose binary still has the sha256 recorded when it was checked, does nothing.
Two builds of the same target take turns on a lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import atomic, elf, fetch, steps, toolchain, unpack
from .commands import Log
from .errors import CheckError
from .paths import build_dir
from .recipes import Release, Target
from .sbom import sha256_of

# Bump when a change here alters what gets built, so that old build folders are not reused.
PIPELINE_REVISION = "1"


@dataclass(frozen=True)
class Built:
    """A finished build: the static, stripped binary and what went into it."""

    binary: Path
    info: Path
    copying: Path
    rebuilt: bool
    seconds: float

    def read_info(self) -> dict:
        """The build-info.json beside the binary."""
        return json.loads(self.info.read_text())


def output_dir(release: Release, target: Target, root: Path | None = None) -> Path:
    """Where the build of `release` for `target` lives."""
    return (root or build_dir()) / f"kexec-tools-{release.version}" / target.name


def build(
    release: Release,
    tools: toolchain.Toolchain,
    *,
    mirrors: Sequence[str] = (),
    jobs: int | None = None,
    root: Path | None = None,
    log: Log = print,
) -> Built:
    """Build (or reuse) the static kexec of `release` with `tools`, for their target."""
    started = time.monotonic()
    target = tools.target
    out = output_dir(release, target, root)
    out.mkdir(parents=True, exist_ok=True)
    label = f"kexec-tools {release.version} {target.name}"
    key = _build_key(release, target, tools)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _up_to_date(out, key, label=label, log=log):
            return _built(out, rebuilt=False, started=started)
        (out / "key").unlink(missing_ok=True)  # a failure below must not leave the old key claiming validity
        log(f"build: {label}")
        tarball = fetch.fetch(release, mirrors=mirrors, log=log)
        source = unpack.unpack(tarball, out / "src")
        runner = steps.Steps(out / "logs", label)
        steps.apply_patches(runner, source, release.patches)
        steps.configure(runner, source, release, tools)
        enabled = steps.verify_config(source, label, arch=target.name)
        binary = steps.make(runner, source, jobs or os.cpu_count() or 1)
        steps.strip(runner, binary, tools, out / "kexec")
        elf.check(out / "kexec", target)
        steps.check_runs(out / "kexec", release, tools.emulator())
        info = {
            "target": target.name,
            "kexec_tools": {
                "version": release.version,
                "source_url": release.urls[0],
                "sha256": release.sha256,
                "patches": [patch.name for patch in release.patches],
            },
            "configure_flags": list(release.configure_flags),
            "compression": enabled,
            **_split_versions(tools.versions()),
            # What the checks above passed: a later change to the file is caught by its hash.
            "binary_sha256": sha256_of(out / "kexec"),
        }
        atomic.write_text(out / "build-info.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
        atomic.write_text(out / "key", key)
        log(f"build: {label} done: {out / 'kexec'}")
        return _built(out, rebuilt=True, started=started)


def _build_key(release: Release, target: Target, tools: toolchain.Toolchain) -> str:
    digest = hashlib.sha256()
    for part in (PIPELINE_REVISION, release.fingerprint(), repr(target), tools.cc, tools.fingerprint()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _up_to_date(out: Path, key: str, *, label: str, log: Log) -> bool:
    """Whether the build in `out` has this key and its binary is the one its checks passed."""
    stamp = out / "key"
    if not (stamp.is_file() and stamp.read_text() == key):
        return False
    recorded = _recorded_sha256(out / "build-info.json")
    got = sha256_of(out / "kexec") if (out / "kexec").is_file() else "nothing (the file is gone)"
    if got != recorded:
        log(
            f"build: {label}: {out / 'kexec'} is not what was built and checked "
            f"(sha256 {recorded or 'none recorded'}, now {got}): building again"
        )
        return False
    return True


def _recorded_sha256(info: Path) -> str | None:
    """The binary's sha256 in build-info.json; None if that file is missing or unreadable."""
    try:
        return json.loads(info.read_text()).get("binary_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def checked_copy(built: Built, release: Release, tools: toolchain.Toolchain, *, into: Path) -> Path:
    """Copy the built binary to `into`/kexec and check that copy, the file that ships: its sha256
    against the build's record, its ELF header, and that it runs `--version` and `--help`."""
    into.mkdir(parents=True, exist_ok=True)
    copy = into / "kexec"
    partial = into / f".kexec.{os.getpid()}.part"
    shutil.copy(built.binary, partial)  # with its mode: the wheel keeps it
    os.replace(partial, copy)
    recorded, got = _recorded_sha256(built.info), sha256_of(copy)
    if got != recorded:
        raise CheckError(
            f"{built.binary} changed after its build was checked (sha256 {recorded}, now {got}): "
            f"build it again with `inv build --arch {tools.target.name} --version {release.version}`"
        )
    elf.check(copy, tools.target)
    steps.check_runs(copy, release, tools.emulator())
    return copy


def _built(out: Path, *, rebuilt: bool, started: float) -> Built:
    return Built(
        binary=out / "kexec",
        info=out / "build-info.json",
        copying=out / "src" / "COPYING",
        rebuilt=rebuilt,
        seconds=time.monotonic() - started,
    )


def _split_versions(versions: dict[str, str]) -> dict:
    compiler = versions.pop("compiler")
    return {"compiler": compiler, "libraries": versions}
