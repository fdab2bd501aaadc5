"""A CycloneDX 1.6 SBOM (PEP 770) for one wheel: what its bundled kexec was made from.

Everything comes from the build's build-info.json and the binary itself, and nothing from the
clock or the build folder, so the same build always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from .digest import sha256_of

FILE_NAME = "kexec-bin.cdx.json"
SPEC_VERSION = "1.6"
LICENSE_EXPRESSION = "MIT AND GPL-2.0-only"
KEXEC_TOOLS_LICENSE = "GPL-2.0-only"


def cyclonedx(
    *,
    wheel_version: str,
    info: dict[str, Any],
    binary: Path,
    epoch: int,
    bundled: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The SBOM of the wheel `wheel_version` whose binary was built as `info` (build-info.json) says.

    `bundled`: the components of the other files the wheel carries (`bundled_component`: Debian's
    archive keyring, memdisk).
    """
    kexec = info["kexec_tools"]
    program: dict[str, Any] = {
        "type": "application",
        "bom-ref": "kexec-tools",
        "name": "kexec-tools",
        "version": kexec["version"],
        "description": "the static kexec binary at kexec_bin/bin/kexec",
        "licenses": [{"license": {"id": KEXEC_TOOLS_LICENSE}}],
        "purl": _purl(
            "kexec-tools", kexec["version"], download_url=kexec["source_url"], checksum=f"sha256:{kexec['sha256']}"
        ),
        "hashes": [{"alg": "SHA-256", "content": sha256_of(binary)}],
        "externalReferences": [
            {
                "type": "source-distribution",
                "url": kexec["source_url"],
                "hashes": [{"alg": "SHA-256", "content": kexec["sha256"]}],
            }
        ],
        "properties": [{"name": "kexec-bin:configure-flag", "value": flag} for flag in info["configure_flags"]],
    }
    if kexec["patches"]:
        program["pedigree"] = {"patches": [{"type": "unofficial", "diff": {"url": name}} for name in kexec["patches"]]}
    libraries = [
        {"type": "library", "bom-ref": name, "name": name, "version": version, "purl": _purl(name, version)}
        for name, version in sorted(info["libraries"].items())
    ]
    compiler = info["compiler"]
    document: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "component": {
                "type": "application",
                "bom-ref": "kexec-bin",
                "name": "kexec-bin",
                "version": wheel_version,
                "purl": f"pkg:pypi/kexec-bin@{wheel_version}",
                "licenses": [{"expression": LICENSE_EXPRESSION}],
            },
            "properties": [{"name": "kexec-bin:target", "value": info["target"]}],
        },
        "components": [program, *libraries, *bundled],
        "dependencies": [
            {
                "ref": "kexec-bin",
                "dependsOn": [
                    "kexec-tools",
                    *(component["bom-ref"] for component in bundled),
                ],
            },
            *({"ref": component["bom-ref"]} for component in bundled),
            {"ref": "kexec-tools", "dependsOn": [library["bom-ref"] for library in libraries]},
            *({"ref": library["bom-ref"]} for library in libraries),
        ],
        # How the binary was made: the compiler is a build tool, not a part of what ships.
        "formulation": [
            {
                "bom-ref": "build",
                "components": [
                    {
                        "type": "application",
                        "bom-ref": "compiler",
                        "name": compiler.split()[0],
                        "version": compiler.split()[-1],
                        "description": compiler,
                    }
                ],
            }
        ],
    }
    # A serial number unique to the content, so that equal SBOMs stay byte-identical.
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).digest()
    document["serialNumber"] = uuid.UUID(bytes=digest[:16], version=4).urn
    return document


def bundled_component(
    *,
    ref: str,
    name: str,
    version: str,
    description: str,
    license: str,
    purl: str,
    sha256: str,
    sources: dict[str, str],
) -> dict[str, Any]:
    """A file the wheel carries besides kexec, from another project's package: `sources` names the
    files of its source (each with its sha256), which the sdist carries."""
    return {
        "type": "application",
        "bom-ref": ref,
        "name": name,
        "version": version,
        "description": description,
        "licenses": [{"license": {"id": license}}],
        "purl": purl,
        "hashes": [{"alg": "SHA-256", "content": sha256}],
        "externalReferences": [
            {"type": "source-distribution", "url": file_name, "hashes": [{"alg": "SHA-256", "content": digest}]}
            for file_name, digest in sources.items()
        ],
    }


def debian_purl(package: str, version: str) -> str:
    """The package URL of an architecture-independent Debian package."""
    return _purl(package, version, arch="all").replace("pkg:generic/", "pkg:deb/debian/")


def dumps(document: dict[str, Any]) -> str:
    """The SBOM as the file carries it: stable key order, one trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _purl(name: str, version: str, **qualifiers: str) -> str:
    """A package URL (purl spec: generic type; qualifiers sorted, values percent-encoded)."""
    query = "&".join(f"{key}={quote(value, safe=':/')}" for key, value in sorted(qualifiers.items()))
    return f"pkg:generic/{name}@{quote(version, safe='')}" + (f"?{query}" if query else "")
