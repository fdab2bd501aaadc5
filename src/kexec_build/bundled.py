"""Files a wheel carries besides kexec, taken from pinned Debian packages (`recipes/bundled.toml`).

Each file comes out of a Debian binary package pinned by version and sha256, and its source package
is pinned file by file. Both are downloaded through a private apt root on the host's own archive (apt
checks them against the archive's signed indexes) into the user's cache, then checked against the
pins; an sdist carries them in its `upstream/` folder, which is looked at first.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import atomic, sbom
from .apt import PrivateApt, apt_root
from .digest import sha256_of
from .errors import BuildError
from .paths import cache_dir
from .recipes import RECIPES_DIR, _File, _is_str_list, _Key

FILE_NAME = "bundled.toml"


@dataclass(frozen=True)
class Bundled:
    """One file a wheel carries from a pinned Debian package (the keys of recipes/bundled.toml)."""

    name: str
    package: str
    version: str
    suite: str
    sha256: str
    member: str
    member_sha256: str
    wheel_path: str
    targets: tuple[str, ...]
    license: str
    license_file: str
    copying: str
    source_package: str
    source_files: dict[str, str]
    """File name → sha256 of each file of the source package."""

    @property
    def deb_name(self) -> str:
        return deb_name(self.package, self.version)

    def deb(self, bundled: Path | None = None) -> Path:
        """The pinned .deb, verified: from `bundled` (an sdist's upstream/ folder) or the cache, else downloaded."""
        return pinned_deb(self.package, self.version, self.suite, self.sha256, bundled=bundled, cache=self._cache())

    def file(self, bundled: Path | None = None) -> Path:
        """The file the wheel carries, taken out of the verified .deb once and checked against its own pin."""
        target = self._cache() / Path(self.member).name
        if not target.is_file():
            atomic.write_bytes(target, deb_member(self.deb(bundled), self.member))
        return verified(target, self.member_sha256, f"{self.member} of {self.package} {self.version}")

    def sources(self, bundled: Path | None = None) -> list[Path]:
        """The source package's files (.dsc, orig and Debian tarballs), each verified against its pin."""
        folder = self._cache() / "source"
        wanted = [(bundled or folder) / name for name in self.source_files]
        if not all(path.is_file() for path in wanted):
            wanted = [folder / name for name in self.source_files]
        if not all(path.is_file() for path in wanted):
            # Its own apt root: one is set up once for its suites, and fetch.py's "sources" root has others.
            apt = PrivateApt(
                cache_dir() / "apt" / f"sources-{self.suite}",
                suites=[self.suite],
                architecture="all",
                types=("deb-src",),
            )
            with tempfile.TemporaryDirectory(dir=self._cache()) as partial:
                folder.mkdir(exist_ok=True)
                for path in apt.download_source(self.source_package, self.version, Path(partial)):
                    os.replace(path, folder / path.name)  # file by file: a concurrent build may do the same
        return [
            verified(path, self.source_files[path.name], f"{self.source_package} {self.version}") for path in wanted
        ]

    def check_license(self, root: Path, bundled: Path | None = None) -> None:
        """Raise `BuildError` unless the reviewed license copy matches `copying` in the source's tarball."""
        tarballs = [path for path in self.sources(bundled) if ".tar." in path.name and ".debian.tar." not in path.name]
        # The upstream tarball; a native package (no .orig.tar) has only its own.
        (orig,) = [path for path in tarballs if ".orig.tar." in path.name] or tarballs
        with tarfile.open(orig) as archive:
            member = archive.extractfile(self.copying)
            upstream = member.read() if member else b""
        recorded = root / self.license_file
        fix = f"review it, then: tar -xOf {orig} {self.copying} > {recorded}"
        if not recorded.is_file() or recorded.read_bytes() != upstream:
            state = "is missing" if not recorded.is_file() else f"differs from {self.copying} in {orig.name}"
            raise BuildError(f"{self.license_file} {state}; {fix}")

    def component(self, path: Path) -> dict[str, Any]:
        """The SBOM component of the carried file `path`: version, sha256, license and source."""
        return sbom.bundled_component(
            ref=self.name,
            name=self.package,
            version=self.version,
            description=f"/{self.member} of Debian's {self.package}, at {self.wheel_path}",
            license=self.license,
            purl=sbom.debian_purl(self.package, self.version),
            sha256=sha256_of(path),
            sources=self.source_files,
        )

    def _cache(self) -> Path:
        folder = cache_dir() / "bundled" / f"{self.package}_{self.version.replace(':', '%3a')}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"[0-9a-f]{64}", value))


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_source(value: Any) -> bool:
    """The source package's name, and each of its file names with a sha256."""
    return (
        isinstance(value, dict)
        and _is_text(value.get("package"))
        and len(value) > 1
        and all(_is_sha256(digest) for name, digest in value.items() if name != "package")
    )


SHA256 = "a sha256 (64 lowercase hex digits)"
_KEYS = (
    _Key("package", "a Debian binary package name", _is_text),
    _Key("version", "the package's Debian version", _is_text),
    _Key("suite", "the Debian suite that has that version", _is_text),
    _Key("sha256", SHA256, _is_sha256),
    _Key("member", "the file's path in the package, without the leading /", _is_text),
    _Key("member-sha256", SHA256, _is_sha256),
    _Key("wheel-path", "the file's path in the wheel", _is_text),
    _Key("targets", "a list of target names", _is_str_list),
    _Key("license", "an SPDX license id", _is_text),
    _Key("license-file", "the reviewed copy's path in the project", _is_text),
    _Key("copying", "the license text's path in the orig tarball", _is_text),
    _Key("source", "{ package = NAME, FILE = SHA256, ... }", _is_source),
)


def load(recipes_dir: Path = RECIPES_DIR) -> list[Bundled]:
    """Every file of recipes/bundled.toml, each table checked (every problem reported in one pass)."""
    recipe = _File(recipes_dir / FILE_NAME)
    found = [(name, recipe.read(table, f"{name}.", _KEYS)) for name, table in recipe.data.items()]
    recipe.fail_if_problems()
    items = []
    for name, entry in found:
        source = dict(entry.pop("source"))
        fields = {key.replace("-", "_"): value for key, value in entry.items()}
        fields["targets"] = tuple(fields["targets"])
        items.append(Bundled(name=name, **fields, source_package=source.pop("package"), source_files=source))
    return items


def for_target(target: str, recipes_dir: Path = RECIPES_DIR) -> list[Bundled]:
    """The files the wheel of `target` carries."""
    return [item for item in load(recipes_dir) if target in item.targets]


def deb_name(package: str, version: str) -> str:
    """The file name of an architecture-independent package (the archive's names carry no epoch)."""
    return f"{package}_{version.partition(':')[2] or version}_all.deb"


def pinned_deb(package: str, version: str, suite: str, sha256: str, *, bundled: Path | None, cache: Path) -> Path:
    """The architecture-independent `package` at `version`, verified against `sha256`: from `bundled` (an
    sdist's folder) or `cache`, else downloaded into `cache` through the private apt root of `suite`."""
    name = deb_name(package, version)
    found = next((path for path in ([bundled / name] if bundled else []) + [cache / name] if path.is_file()), None)
    if found is None:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as partial:
            apt = apt_root("amd64", suite)  # an "all" package: any architecture's index lists it
            (downloaded,) = apt.download([f"{package}={version}"], Path(partial))
            found = downloaded.rename(cache / name)
    return verified(found, sha256, f"{package} {version}")


def verified(path: Path, expected: str, what: str) -> Path:
    """`path`, unless its sha256 is not the `expected` pin for `what`: then a `BuildError` with the fix."""
    got = sha256_of(path)
    if got != expected:
        raise BuildError(
            f"{path}: sha256 {got}, but the pin for {what} is {expected}: remove the file to fetch it again, "
            "or review the new package and update the pin"
        )
    return path


def deb_member(deb: Path, name: str) -> bytes:
    """One file of a .deb's data archive (dpkg-deb reads whichever compression it uses)."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        member = archive.extractfile(f"./{name}")
        if member is None:
            raise BuildError(f"{deb} holds no /{name}: the package changed its layout; update its pin")
        return member.read()
