"""Load and validate `recipes/*.toml` into `Release` and `Target` values.

Every problem in a file is reported in one pass, each naming the file, the key and what was
expected; unknown keys are refused with the nearest known key as a suggestion.
"""

from __future__ import annotations

import difflib
import hashlib
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from .errors import RecipeError
from .paths import PROJECT_ROOT

RECIPES_DIR = PROJECT_ROOT / "recipes"
RELEASES_FILE = "kexec-tools.toml"
TARGETS_FILE = "targets.toml"

_SHA256 = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"\d+(\.\d+)+")


@dataclass(frozen=True)
class Target:
    """A CPU architecture kexec-bin builds for."""

    name: str
    triplet: str
    uname: tuple[str, ...]
    debian_arch: str
    elf_machine: str
    elf_class: int
    elf_endian: str
    wheel_tags: tuple[str, ...]
    qemu: str
    packages: tuple[str, ...]

    @property
    def platform_tag(self) -> str:
        """The compressed platform tag of a wheel for this target."""
        return ".".join(self.wheel_tags)


@dataclass(frozen=True)
class Release:
    """One kexec-tools release: where its tarball is, its hash, patches and flags."""

    version: str
    sha256: str
    size: int
    """The tarball's length in bytes: a download stops there instead of filling the disk."""
    build: int
    source: str
    urls: tuple[str, ...]
    patches: tuple[Path, ...]
    configure_flags: tuple[str, ...]
    targets: tuple[str, ...]
    debian_package: str
    debian_suites: tuple[str, ...]

    @property
    def debian_orig(self) -> str:
        """The file name of this release's orig tarball in Debian's source package."""
        compression = self.source.rsplit(".tar.", 1)[1]
        return f"{self.debian_package}_{self.version}.orig.tar.{compression}"

    @property
    def wheel_version(self) -> str:
        """The version of kexec-bin that ships this release: upstream plus our rebuild number."""
        return f"{self.version}.{self.build}"

    def fingerprint(self) -> str:
        """A digest of everything in this entry that changes what gets built (patch contents too)."""
        digest = hashlib.sha256()
        for part in (self.version, self.sha256, *self.configure_flags):
            digest.update(part.encode() + b"\0")
        for patch in self.patches:
            digest.update(patch.name.encode() + b"\0" + patch.read_bytes() + b"\0")
        return digest.hexdigest()


@dataclass(frozen=True)
class Recipes:
    """Everything under `recipes/`."""

    default_version: str
    releases: dict[str, Release]
    targets: dict[str, Target]
    native_packages: tuple[str, ...]
    sysroot_packages: tuple[str, ...]

    def release(self, version: str | None = None) -> Release:
        """The release for `version` (the default release when None)."""
        version = version or self.default_version
        try:
            return self.releases[version]
        except KeyError:
            raise RecipeError(
                f"unknown kexec-tools version {version!r}: recipes/{RELEASES_FILE} has "
                f"{', '.join(self.releases)}{_suggest(version, self.releases)}"
            ) from None

    def target(self, name: str) -> Target:
        """The target called `name`, or the one serving this `uname -m` value."""
        if name in self.targets:
            return self.targets[name]
        for target in self.targets.values():
            if name in target.uname:
                return target
        raise RecipeError(
            f"unknown arch {name!r}: choose one of native, all, {', '.join(self.targets)}{_suggest(name, self.targets)}"
        )

    def native_target(self) -> Target:
        """The target of the machine this runs on."""
        machine = platform.machine()
        try:
            return self.target(machine)
        except RecipeError:
            raise RecipeError(
                f"this machine's CPU ({machine}) is not a kexec-bin target; "
                f"build for one of {', '.join(self.targets)} with --arch"
            ) from None

    def select_targets(self, spec: str, release: Release) -> list[Target]:
        """Parse `native`, `all` or a comma-separated list of arch names for `release`."""
        if spec == "all":
            return [self.targets[name] for name in release.targets]
        names = spec.split(",") if spec else ["native"]
        chosen = [self.native_target() if name == "native" else self.target(name) for name in names]
        for target in chosen:
            if target.name not in release.targets:
                raise RecipeError(
                    f"kexec-tools {release.version} does not support {target.name} "
                    f"(recipes/{RELEASES_FILE} lists {', '.join(release.targets)}); "
                    f"choose another --version or --arch"
                )
        return list(dict.fromkeys(chosen))


def load(recipes_dir: Path = RECIPES_DIR) -> Recipes:
    """Read and validate both recipe files; raise `RecipeError` listing every problem."""
    targets_file = _File(recipes_dir / TARGETS_FILE)
    targets = targets_file.read_targets()
    releases_file = _File(recipes_dir / RELEASES_FILE)
    default, releases = releases_file.read_releases(recipes_dir, known_targets=targets)
    return Recipes(
        default_version=default,
        releases=releases,
        targets=targets,
        native_packages=targets_file.native_packages,
        sysroot_packages=targets_file.sysroot_packages,
    )


def _suggest(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (perhaps you meant {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class _Key:
    """A key a recipe table may hold: what it must be (as told to the user) and the check of that."""

    name: str
    expected: str
    check: Callable[[Any], bool]
    required: bool = True


def _formats_with_version(template: str) -> bool:
    """Whether `template` takes {version} and nothing else: a stray brace or another field fails."""
    try:
        template.format(version="0")
    except (KeyError, IndexError, ValueError):
        return False
    return True


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


def _is_nonempty_str_list(value: Any) -> bool:
    return _is_str_list(value) and bool(value)


def _is_word(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"[A-Za-z0-9._+-]+", value))


def _is_table_of_tables(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(item, dict) for item in value.values())


def _is_debian_source(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("package"), str) and _is_str_list(value.get("suites"))


PACKAGES = "a list of package names"
# targets.toml: the top level, each [target.<name>] table, and its `elf = {...}`.
_TARGETS_KEYS = (
    _Key("native-packages", PACKAGES, _is_str_list),
    _Key("sysroot-packages", PACKAGES, _is_str_list),
    _Key("target", "[target.<name>] tables", _is_table_of_tables),
)
_TARGET_KEYS = (
    _Key("triplet", "a GNU triplet such as 'aarch64-linux-gnu'", lambda v: isinstance(v, str) and v.count("-") >= 2),
    _Key("uname", "a non-empty list of `uname -m` values", _is_nonempty_str_list),
    _Key("debian-arch", "a Debian architecture name", _is_word),
    _Key("elf", "an inline table {machine, class, endian}", lambda v: isinstance(v, dict)),
    _Key("wheel-tags", "a non-empty list of platform tags", _is_nonempty_str_list),
    _Key("qemu", "a qemu-user program name", _is_word),
    _Key("packages", PACKAGES, _is_str_list),
)
_ELF_KEYS = (
    _Key("machine", "an EM_* name such as 'EM_AARCH64'", lambda v: isinstance(v, str) and v.startswith("EM_")),
    _Key("class", "32 or 64", lambda v: v in (32, 64)),
    _Key("endian", "'little' or 'big'", lambda v: v in ("little", "big")),
)
# kexec-tools.toml: the top level, its `debian-source = {...}`, and each [release."<version>"] table.
_RELEASES_KEYS = (
    _Key("default", "a version string", lambda v: isinstance(v, str)),
    _Key("sites", "a list of https URLs", lambda v: _is_str_list(v) and all(s.startswith("https://") for s in v)),
    _Key(
        "source",
        "a file name such as 'name-{version}.tar.xz'",
        lambda v: (
            isinstance(v, str) and "{version}" in v and ".tar." in v and "/" not in v and _formats_with_version(v)
        ),
    ),
    _Key("debian-source", "{package = '<name>', suites = [...]}", _is_debian_source),
    _Key(
        "configure-flags",
        "a list of ./configure options",
        lambda v: _is_str_list(v) and all(f.startswith("--") for f in v),
    ),
    _Key("release", '[release."<version>"] tables', _is_table_of_tables),
)
_DEBIAN_SOURCE_KEYS = (
    _Key("package", "a Debian source package name", lambda v: isinstance(v, str)),
    _Key("suites", "a list of suite names", _is_str_list),
)
_RELEASE_KEYS = (
    _Key("sha256", "64 lowercase hex digits", lambda v: isinstance(v, str) and bool(_SHA256.fullmatch(v))),
    _Key(
        "size",
        "the tarball's length in bytes (a whole number > 0)",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
    ),
    _Key("build", "a whole number >= 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    _Key("targets", f"a list of target names from {TARGETS_FILE}", _is_str_list),
    _Key("configure-flags", "a list of ./configure options", _is_str_list, required=False),
)


class _File:
    """One TOML recipe file, with the problems found in it so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []
        try:
            self.data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise RecipeError(f"{path}: recipe file is missing") from None
        except tomllib.TOMLDecodeError as error:
            raise RecipeError(f"{path}: not valid TOML: {error}") from None
        self.native_packages: tuple[str, ...] = ()
        self.sysroot_packages: tuple[str, ...] = ()

    def fail_if_problems(self) -> None:
        if self.problems:
            listing = "\n".join(f"  - {problem}" for problem in self.problems)
            raise RecipeError(f"{self.path}: {len(self.problems)} problem(s):\n{listing}")

    def read(self, table: dict, where: str, keys: Sequence[_Key]) -> dict[str, Any]:
        """Each of `keys` in `table` (None when missing or failing its check, with the problem recorded);
        a key `table` holds that is not in `keys` is a problem too."""
        allowed = [key.name for key in keys]
        for name in table:
            if name not in allowed:
                self.problems.append(f"{where}{name}: unknown key{_suggest(name, allowed)}")
        values = {}
        for key in keys:
            value = table.get(key.name)
            if key.name not in table:
                if key.required:
                    self.problems.append(f"{where}{key.name}: missing; expected {key.expected}")
            elif not key.check(value):
                self.problems.append(f"{where}{key.name}: expected {key.expected}, got {value!r}")
                value = None
            values[key.name] = value
        return values

    def read_targets(self) -> dict[str, Target]:
        top = self.read(self.data, "", _TARGETS_KEYS)
        self.native_packages = tuple(top["native-packages"] or ())
        self.sysroot_packages = tuple(top["sysroot-packages"] or ())
        targets = {}
        for name, table in (top["target"] or {}).items():
            where = f"target.{name}."
            target = self.read(table, where, _TARGET_KEYS)
            elf = self.read(target["elf"] or {}, where + "elf.", _ELF_KEYS)
            fields = (*target.values(), *elf.values())
            if None not in fields:
                targets[name] = Target(
                    name=name,
                    triplet=target["triplet"],
                    uname=tuple(target["uname"]),
                    debian_arch=target["debian-arch"],
                    elf_machine=elf["machine"],
                    elf_class=elf["class"],
                    elf_endian=elf["endian"],
                    wheel_tags=tuple(target["wheel-tags"]),
                    qemu=target["qemu"],
                    packages=tuple(target["packages"]),
                )
        self.fail_if_problems()
        return targets

    def read_releases(self, recipes_dir: Path, known_targets: dict[str, Target]) -> tuple[str, dict[str, Release]]:
        top = self.read(self.data, "", _RELEASES_KEYS)
        default, source = top["default"], top["source"] or ""
        debian = top["debian-source"] or {}
        if top["debian-source"] is not None:  # its keys' types are checked with it; here, unknown keys
            self.read(debian, "debian-source.", _DEBIAN_SOURCE_KEYS)
        tables = top["release"] or {}
        releases = {}
        for version, table in tables.items():
            where = f"release.{version!r}."
            if not _VERSION.fullmatch(version):
                self.problems.append(f"release.{version!r}: expected a version such as '2.0.32'")
            entry = self.read(table, where, _RELEASE_KEYS)
            for name in entry["targets"] or []:
                if name not in known_targets:
                    self.problems.append(f"{where}targets: unknown target {name!r}{_suggest(name, known_targets)}")
            if entry["sha256"] is not None and entry["size"] is not None and entry["build"] is not None and source:
                filename = source.format(version=version)
                releases[version] = Release(
                    version=version,
                    sha256=entry["sha256"],
                    size=entry["size"],
                    build=entry["build"],
                    source=filename,
                    urls=tuple(f"{site.rstrip('/')}/{filename}" for site in top["sites"] or []),
                    patches=tuple(sorted((recipes_dir / "patches" / version).glob("*.patch"))),
                    configure_flags=(*(top["configure-flags"] or []), *(entry["configure-flags"] or [])),
                    targets=tuple(entry["targets"] or []),
                    debian_package=debian.get("package", ""),
                    debian_suites=tuple(debian.get("suites", ())),
                )
        if default is not None and tables and default not in tables:
            self.problems.append(f"default: {default!r} is not one of the releases ({', '.join(tables)})")
        self.fail_if_problems()
        return default, releases
