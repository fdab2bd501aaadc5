"""Load and validate `recipes/*.toml` into `Release` and `Target` values.

Every problem in a file is reported in one pass, each naming the file, the key and what was
expected; unknown keys are refused with the nearest known key as a suggestion.
"""

from __future__ import annotations

import difflib
import hashlib
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

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
            f"unknown arch {name!r}: choose one of native, all, {', '.join(self.targets)}"
            f"{_suggest(name, self.targets)}"
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

    def get(self, table: dict, where: str, key: str, expected: str, check: Callable[[Any], bool]) -> Any:
        """Read `table[key]`, recording a problem if it is missing or fails `check`."""
        if key not in table:
            self.problems.append(f"{where}{key}: missing; expected {expected}")
            return None
        value = table[key]
        if not check(value):
            self.problems.append(f"{where}{key}: expected {expected}, got {value!r}")
            return None
        return value

    def refuse_unknown(self, table: dict, where: str, allowed: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                self.problems.append(f"{where}{key}: unknown key{_suggest(key, allowed)}")

    def read_targets(self) -> dict[str, Target]:
        self.refuse_unknown(self.data, "", ["native-packages", "sysroot-packages", "target"])
        self.native_packages = tuple(self.get(self.data, "", "native-packages", "a list of package names", _is_str_list) or ())
        self.sysroot_packages = tuple(self.get(self.data, "", "sysroot-packages", "a list of package names", _is_str_list) or ())
        tables = self.get(self.data, "", "target", "[target.<name>] tables", _is_table_of_tables) or {}
        targets = {}
        for name, table in tables.items():
            where = f"target.{name}."
            self.refuse_unknown(table, where, ["triplet", "uname", "debian-arch", "elf", "wheel-tags", "qemu", "packages"])
            elf = self.get(table, where, "elf", "an inline table {machine, class, endian}", lambda v: isinstance(v, dict)) or {}
            self.refuse_unknown(elf, where + "elf.", ["machine", "class", "endian"])
            fields = dict(
                triplet=self.get(table, where, "triplet", "a GNU triplet such as 'aarch64-linux-gnu'", lambda v: isinstance(v, str) and v.count("-") >= 2),
                uname=self.get(table, where, "uname", "a non-empty list of `uname -m` values", lambda v: _is_str_list(v) and bool(v)),
                debian_arch=self.get(table, where, "debian-arch", "a Debian architecture name", _is_word),
                elf_machine=self.get(elf, where + "elf.", "machine", "an EM_* name such as 'EM_AARCH64'", lambda v: isinstance(v, str) and v.startswith("EM_")),
                elf_class=self.get(elf, where + "elf.", "class", "32 or 64", lambda v: v in (32, 64)),
                elf_endian=self.get(elf, where + "elf.", "endian", "'little' or 'big'", lambda v: v in ("little", "big")),
                wheel_tags=self.get(table, where, "wheel-tags", "a non-empty list of platform tags", lambda v: _is_str_list(v) and bool(v)),
                qemu=self.get(table, where, "qemu", "a qemu-user program name", _is_word),
                packages=self.get(table, where, "packages", "a list of package names", _is_str_list),
            )
            if None not in fields.values():
                fields["uname"] = tuple(fields["uname"])
                fields["wheel_tags"] = tuple(fields["wheel_tags"])
                fields["packages"] = tuple(fields["packages"])
                targets[name] = Target(name=name, **fields)
        self.fail_if_problems()
        return targets

    def read_releases(self, recipes_dir: Path, known_targets: dict[str, Target]) -> tuple[str, dict[str, Release]]:
        self.refuse_unknown(self.data, "", ["default", "sites", "source", "debian-source", "configure-flags", "release"])
        default = self.get(self.data, "", "default", "a version string", lambda v: isinstance(v, str))
        sites = self.get(self.data, "", "sites", "a list of https URLs", lambda v: _is_str_list(v) and all(s.startswith("https://") for s in v)) or []
        source = self.get(self.data, "", "source", "a file name such as 'name-{version}.tar.xz'",
                          lambda v: isinstance(v, str) and "{version}" in v and ".tar." in v and "/" not in v
                          and _formats_with_version(v)) or ""
        flags = self.get(self.data, "", "configure-flags", "a list of ./configure options", lambda v: _is_str_list(v) and all(f.startswith("--") for f in v)) or []
        debian = self.get(self.data, "", "debian-source", "{package = '<name>', suites = [...]}",
                          lambda v: isinstance(v, dict) and isinstance(v.get("package"), str) and _is_str_list(v.get("suites"))) or {}
        self.refuse_unknown(debian, "debian-source.", ["package", "suites"])
        tables = self.get(self.data, "", "release", '[release."<version>"] tables', _is_table_of_tables) or {}
        releases = {}
        for version, table in tables.items():
            where = f"release.{version!r}."
            if not _VERSION.fullmatch(version):
                self.problems.append(f"release.{version!r}: expected a version such as '2.0.32'")
            self.refuse_unknown(table, where, ["sha256", "size", "build", "targets", "configure-flags"])
            sha256 = self.get(table, where, "sha256", "64 lowercase hex digits", lambda v: isinstance(v, str) and bool(_SHA256.fullmatch(v)))
            size = self.get(table, where, "size", "the tarball's length in bytes (a whole number > 0)", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0)
            build = self.get(table, where, "build", "a whole number >= 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0)
            targets = self.get(table, where, "targets", f"a list of target names from {TARGETS_FILE}", _is_str_list) or []
            for name in targets:
                if name not in known_targets:
                    self.problems.append(f"{where}targets: unknown target {name!r}{_suggest(name, known_targets)}")
            extra_flags = table.get("configure-flags", [])
            if not _is_str_list(extra_flags):
                self.problems.append(f"{where}configure-flags: expected a list of ./configure options, got {extra_flags!r}")
                extra_flags = []
            if sha256 is not None and size is not None and build is not None and source:
                filename = source.format(version=version)
                releases[version] = Release(
                    version=version,
                    sha256=sha256,
                    size=size,
                    build=build,
                    source=filename,
                    urls=tuple(f"{site.rstrip('/')}/{filename}" for site in sites),
                    patches=tuple(sorted((recipes_dir / "patches" / version).glob("*.patch"))),
                    configure_flags=tuple(flags) + tuple(extra_flags),
                    targets=tuple(targets),
                    debian_package=debian.get("package", ""),
                    debian_suites=tuple(debian.get("suites", ())),
                )
        if default is not None and tables and default not in tables:
            self.problems.append(f"default: {default!r} is not one of the releases ({', '.join(tables)})")
        self.fail_if_problems()
        return default, releases


def _formats_with_version(template: str) -> bool:
    """Whether `template` takes {version} and nothing else: a stray brace or another field fails."""
    try:
        template.format(version="0")
    except (KeyError, IndexError, ValueError):
        return False
    return True


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


def _is_word(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"[A-Za-z0-9._+-]+", value))


def _is_table_of_tables(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(item, dict) for item in value.values())
