"""Each target's wheel, checked by the tools a publisher and an installer use, and run."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from kexec_bin.stories import iso
from kexec_build import bundled, elf, hook, recipes, sbom, toolchain
from kexec_build.commands import run
from tests.wheel.debian_hosts import run_python, supported_tags
from tests.wheel.wheel_files import member, platform_arch, tool

# cross: the all_wheels fixture cross-builds every target, and the binaries run under qemu-user.
pytestmark = [pytest.mark.build, pytest.mark.cross]
RECIPES = recipes.load()
TARGETS = RECIPES.release().targets


@pytest.mark.parametrize("name", TARGETS)
def test_twine_and_check_wheel_contents_accept_it(all_wheels, name):
    run(tool("twine"), "check", "--strict", all_wheels[name])
    run(tool("check-wheel-contents"), all_wheels[name])


@pytest.mark.parametrize(
    "name", [name for name in TARGETS if any("manylinux" in tag for tag in RECIPES.target(name).wheel_tags)]
)
def test_auditwheel_sees_no_shared_library_and_a_policy_the_tag_covers(all_wheels, recipe_set, name):
    shown = run(tool("auditwheel"), "show", all_wheels[name])
    text = " ".join(shown.stdout.split())
    assert "The wheel requires no external shared libraries!" in text
    policy = re.search(r'consistent with the following platform tag: "manylinux_(\d+)_(\d+)_', text)
    assert policy, text
    floor = min(_glibc(platform) for platform in recipe_set.target(name).wheel_tags if "manylinux" in platform)
    assert (int(policy[1]), int(policy[2])) <= floor


@pytest.mark.parametrize("name", TARGETS)
def test_the_binary_is_executable_and_built_for_the_cpu_of_every_tag(all_wheels, recipe_set, tmp_path, name):
    target = recipe_set.target(name)
    with zipfile.ZipFile(all_wheels[name]) as archive:
        info = archive.getinfo(hook.BINARY)
        assert info.external_attr >> 16 == 0o100755
        binary = Path(archive.extract(info, tmp_path))
    machine = elf.check(binary, target).machine
    _, _, _, tags = parse_wheel_filename(all_wheels[name].name)
    for tag in tags:
        assert recipe_set.target(platform_arch(tag.platform, target)).elf_machine == machine


@pytest.mark.parametrize("name", TARGETS)
def test_pip_installs_it_for_each_of_its_platform_tags_and_the_binary_runs(all_wheels, recipe_set, tmp_path, name):
    target = recipe_set.target(name)
    prefix = toolchain.for_target(target, recipe_set).emulator()
    assert not prefix or shutil.which(prefix[0]), (
        f"{target.qemu} is missing: scripts/setup --test installs qemu-user-static"
    )
    for platform in target.wheel_tags:
        folder = tmp_path / platform
        pip_install_for(platform, all_wheels[name], folder)
        (installed,) = folder.glob("kexec_bin-*.dist-info")
        assert installed.name == f"kexec_bin-{recipe_set.release().wheel_version}.dist-info"
        ran = run(*prefix, folder / hook.BINARY, "--version")
        assert f"kexec-tools {recipe_set.release().version}" in ran.stdout + ran.stderr


@pytest.mark.parametrize("name", TARGETS)
def test_packaging_on_a_debian_host_of_that_cpu_accepts_it(all_wheels, recipe_set, name):
    # Debian's own python3 for that CPU, run by qemu-user, asks packaging.tags what pip may install.
    _, _, _, tags = parse_wheel_filename(all_wheels[name].name)
    assert tags & supported_tags(recipe_set.target(name))


@pytest.mark.parametrize("name", TARGETS)
def test_the_runtime_on_that_cpu_takes_the_bundled_binary(all_wheels, recipe_set, tmp_path, name):
    # The installed runtime in Debian's python3 for that CPU: qemu-user reports the CPU as uname -m,
    # so the runtime's own checks (uname against _build_info, the ELF header) run as on such a host.
    target = recipe_set.target(name)
    pip_install_for(target.wheel_tags[0], all_wheels[name], tmp_path)
    code = (
        "import runpy, sys; sys.path.insert(0, sys.argv[1]); sys.argv[1:] = ['which', '--json']; "
        "runpy.run_module('kexec_bin', run_name='__main__')"
    )
    chosen = json.loads(run_python(target, code, tmp_path, env={**os.environ, "KEXEC_BIN_PREFER": "bundled"}))
    assert (chosen["source"], chosen["path"]) == ("bundled", str(tmp_path / hook.BINARY))


@pytest.mark.parametrize("name", TARGETS)
def test_build_info_tells_the_runtime_what_it_bundles(all_wheels, recipe_set, name):
    target = recipe_set.target(name)
    values: dict = {}
    exec(member(all_wheels[name], hook.BUILD_INFO).decode(), values)
    assert (values["TARGET"], values["UNAME"], values["ELF_MACHINE"], values["KEXEC_TOOLS_VERSION"]) == (
        target.name,
        target.uname,
        target.elf_machine,
        recipe_set.release().version,
    )


def pip_install_for(platform: str, built: Path, folder: Path) -> None:
    """pip install kexec-bin into `folder` as for a host of `platform`, choosing among the wheels beside `built`."""
    run(
        tool("pip"),
        "install",
        "--no-index",
        "--find-links",
        built.parent,
        "--only-binary=:all:",
        "--platform",
        platform,
        "--target",
        folder,
        "--disable-pip-version-check",
        "kexec-bin",
    )


def _glibc(platform: str) -> tuple[int, int]:
    """The glibc version a manylinux platform tag promises (manylinux2014 is 2.17)."""
    legacy = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
    policy = platform.split("_", 1)[0]
    if policy in legacy:
        return legacy[policy]
    versioned = re.match(r"manylinux_(\d+)_(\d+)_", platform)
    assert versioned, f"{platform} is neither a legacy nor a manylinux_X_Y policy"
    major, minor = versioned.groups()
    return int(major), int(minor)


@pytest.mark.parametrize("name", TARGETS)
def test_only_the_x86_wheels_carry_memdisk_with_its_pinned_sha256_and_their_sbom_names_it(all_wheels, name):
    """memdisk (syslinux-common, pinned in recipes/bundled.toml) is a real-mode x86 program."""
    (memdisk,) = [item for item in bundled.load() if item.name == "memdisk"]
    wheel = all_wheels[name]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    (sbom_file,) = [path for path in names if path.endswith(f"/sboms/{sbom.FILE_NAME}")]
    components = {component["bom-ref"]: component for component in json.loads(member(wheel, sbom_file))["components"]}
    if any(uname in iso.X86 for uname in RECIPES.target(name).uname):
        assert hashlib.sha256(member(wheel, memdisk.wheel_path)).hexdigest() == memdisk.member_sha256
        component = components["memdisk"]
        assert (component["name"], component["version"]) == ("syslinux-common", memdisk.version)
        assert component["licenses"] == [{"license": {"id": "GPL-2.0-only"}}]
        assert component["hashes"] == [{"alg": "SHA-256", "content": memdisk.member_sha256}]
        sources = {reference["url"]: reference["hashes"][0]["content"] for reference in component["externalReferences"]}
        assert sources == memdisk.source_files
    else:
        assert memdisk.wheel_path not in names
        assert "memdisk" not in components
