"""The transcripts in docs/ are real: each is what its command prints, run here on a test tree or image.

A transcript sits in a docs page between `<!-- transcript: NAME -->` and `<!-- end transcript -->`. Each
test runs the command and compares; `inv docs` (which runs this file with `--update-docs`) writes the output
in instead. The tree's temporary path is shown as /srv/host, the recording kexec as /usr/sbin/kexec.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kexec_bin.cli import main
from kexec_build.paths import PROJECT_ROOT
from kexec_build.testbed import iso_images

from .kernel_trees import install_kernel, package_tree

SHOWN_ROOT = "/srv/host"
SHOWN_KEXEC = "/usr/sbin/kexec"
BLOCK = re.compile(r"(<!-- transcript: (?P<name>[\w-]+) -->\n```\n)(?P<body>.*?)(```\n<!-- end transcript -->)", re.S)

pytestmark = pytest.mark.network  # Debian's kernels and installer, downloaded into an empty cache


def transcript(page: str, name: str, text: str, update: bool) -> None:
    """Compare `text` with the transcript `name` of docs/`page`, or write it there when `update`."""
    path = PROJECT_ROOT / "docs" / page
    content = path.read_text()
    found = [match for match in BLOCK.finditer(content) if match["name"] == name]
    assert len(found) == 1, f"docs/{page} should hold one transcript block named {name!r}"
    (match,) = found
    if update:
        path.write_text(content[: match.start("body")] + text + content[match.end("body") :])
    else:
        assert match["body"] == text, (
            f"docs/{page}: transcript {name!r} differs from the command's output: run `inv docs`"
        )


def shown(text: str, tree_root: Path, kexec_folder: Path) -> str:
    text = text.replace(str(kexec_folder / "kexec"), SHOWN_KEXEC).replace(str(tree_root), SHOWN_ROOT)
    return re.sub(r"/tmp/kexec-bin-iso-[\w]+/", "/tmp/kexec-bin-iso-…/", text)


def run(capsys, prompt: str, *args: str, tree_root: Path, kexec_folder: Path) -> str:
    status = main(list(args))
    out = capsys.readouterr()
    assert status == 0, out.err
    return shown(f"$ {prompt}\n{out.out}{out.err}", tree_root, kexec_folder)


@pytest.fixture
def machine(tree, recording_kexec):
    """The doctor's healthy tree, bookworm's kernel running and bookworm-backports' installed, a system kexec."""
    old = install_kernel(tree.root, package_tree("bookworm"))
    install_kernel(tree.root, package_tree("bookworm-backports"))
    tree.write("/proc/sys/kernel/osrelease", old + "\n")
    return tree, recording_kexec.parent / "sbin"


def test_reboot_dry_run(machine, capsys, request):
    tree, kexec_folder = machine
    text = run(
        capsys,
        "kexec-bin reboot --dry-run",
        *("reboot", "--dry-run", "--root", str(tree.root)),
        tree_root=tree.root,
        kexec_folder=kexec_folder,
    )
    transcript("reboot.md", "reboot-dry-run", text, request.config.getoption("--update-docs"))


def test_doctor(machine, capsys, request):
    tree, kexec_folder = machine
    text = run(
        capsys, "kexec-bin doctor", "doctor", "--root", str(tree.root), tree_root=tree.root, kexec_folder=kexec_folder
    )
    transcript("doctor.md", "doctor", text, request.config.getoption("--update-docs"))


def run_iso(capsys, machine, image: Path, *options: str) -> str:
    """`kexec-bin iso` with each of `options` in turn, the image shown as /srv/images/NAME."""
    tree, kexec_folder = machine
    shown_image = f"/srv/images/{image.name}"
    text = ""
    for option in options:
        root = ["--root", str(tree.root)] if option == "--dry-run" else []
        text += run(
            capsys,
            f"kexec-bin iso {shown_image} {option}",
            *("iso", str(image), option, *root),
            tree_root=tree.root,
            kexec_folder=kexec_folder,
        )
    return text.replace(str(image), shown_image)


@pytest.mark.skipif(bool(iso_images.missing_tools()), reason=iso_images.missing_tools())
def test_iso_list_and_dry_run(machine, capsys, request, tmp_path):
    text = run_iso(capsys, machine, iso_images.loopback_image(tmp_path), "--list", "--dry-run")
    transcript("iso.md", "iso-list-and-dry-run", text, request.config.getoption("--update-docs"))


@pytest.mark.skipif(bool(iso_images.missing_tools()), reason=iso_images.missing_tools())
def test_iso_list_of_an_isolinux_image(machine, capsys, request, tmp_path):
    """syslinux's order: an INCLUDE is read where it stands, so Debian's adtxt.cfg gives Expert, Rescue, Automated."""
    text = run_iso(capsys, machine, iso_images.isolinux_image(tmp_path), "--list")
    transcript("iso.md", "iso-list-isolinux", text, request.config.getoption("--update-docs"))
