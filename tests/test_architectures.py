"""One table of architecture names: recipes/targets.toml, and the runtime's copy generated from it."""

from __future__ import annotations

from kexec_bin import _architectures
from kexec_bin.debian import installer
from kexec_bin.stories import iso
from kexec_build import hook, recipes
from kexec_build.paths import PROJECT_ROOT


def test_the_runtime_table_is_what_the_recipes_say():
    # A change to recipes/targets.toml fails here (and every wheel build) until the table is regenerated.
    assert (PROJECT_ROOT / hook.ARCHITECTURES).read_text() == hook.architectures_module(recipes.load())
    hook.check_architectures(PROJECT_ROOT, recipes.load())


def test_every_target_machine_maps_to_its_debian_architecture():
    for target in recipes.load().targets.values():
        for machine in target.uname:
            assert installer.machine_arch(machine) == target.debian_arch
            assert _architectures.TARGETS[machine] == target.name


def test_memdisk_machines_are_the_x86_targets():
    recipe_set = recipes.load()
    assert set(iso.X86) == {*recipe_set.target("x86_64").uname, *recipe_set.target("i686").uname}
