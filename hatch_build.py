"""hatchling hooks for kexec-bin: they hand hatchling what `kexec_build.hook` decides.

Metadata: the version (2.0.32.0: the kexec-tools release plus our rebuild number) and the license
files, from the release chosen by $KEXEC_BIN_VERSION. In an sdist, hatchling takes both from
PKG-INFO instead, so a wheel built from it ships the release that the sdist carries.

Build: the wheel gets the static kexec for the target chosen by $KEXEC_BIN_ARCH (default: this
machine), its platform tag, `kexec_bin/_build_info.py` and a CycloneDX SBOM; the sdist gets the
upstream tarball. Both are timestamped with the release's date (SOURCE_DATE_EPOCH).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from kexec_build import hook, recipes
from kexec_build.errors import BuildError


@contextmanager
def _reported() -> Iterator[None]:
    """A toolkit error ends the backend with its message alone: it names the problem and the fix."""
    try:
        yield
    except BuildError as error:
        raise SystemExit(f"kexec-bin: {error}") from None


class KexecBinMetadata(MetadataHookInterface):
    """Set `version` and `license-files` from the chosen release."""

    def update(self, metadata: dict[str, Any]) -> None:
        with _reported():
            release = hook.chosen_release(recipes.load())
        metadata["version"] = release.wheel_version
        metadata["license-files"] = hook.license_files(release)


class KexecBinBuild(BuildHookInterface):
    """Add the binary, tag, build info and SBOM to the wheel, and the upstream tarball to the sdist."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":  # an editable install runs src/kexec_bin, which bundles no binary
            return
        root = Path(self.root)
        with _reported():
            if self.target_name == "wheel":
                contents = hook.wheel_contents(root, self.metadata.version, log=self.app.display_info)
            else:
                contents = hook.sdist_contents(root, self.metadata.version, log=self.app.display_info)
        if contents.tag:
            build_data["tag"] = contents.tag
            build_data["pure_python"] = False
            build_data["sbom_files"].extend(contents.sboms)
        build_data["force_include"].update(contents.files)
        # The archive's timestamps; a value the caller set wins, as reproducible-builds.org asks.
        os.environ.setdefault("SOURCE_DATE_EPOCH", str(contents.epoch))
