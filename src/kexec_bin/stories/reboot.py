"""`kexec-bin reboot`: boot the kernel this machine would boot next, skipping firmware and boot loader.

The kernel is the one the boot loader would choose (see `bootloader`), or the one named with
--kernel; the command line is the running kernel's without the parameters that describe the
previous boot rather than the system (DROPPED), or the one given.
"""

from __future__ import annotations

import argparse
import os
import stat

from .. import plan
from ..bootloader import Candidate, inside, modules_missing, named_kernel, next_kernel
from ..errors import BootError, PlanError
from ..wayback import plan_way_back

# Parameters of the running command line that must not reach the next kernel, and why.
DROPPED = {
    "BOOT_IMAGE": "the boot loader's path of the previous kernel image",
    "initrd": "the boot loader's (or EFI stub's) path of the previous initrd; kexec hands over the new one",
    "elfcorehdr": "the crash dump's header address, set only for a kdump kernel",
    "kexec_jump_back_entry": "kexec-tools' return address of a kexec jump, valid in the previous kernel only",
}
# An initramfs: a cpio archive ("newc" or "crc" format, e.g. uncompressed early microcode first), or compressed.
_INITRD_MAGICS = (
    (b"070701", "cpio archive"),
    (b"070702", "cpio archive"),
    (b"\x1f\x8b", "gzip-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"\x02\x21\x4c\x18", "lz4-compressed"),
    (b"BZh", "bzip2-compressed"),
    (b"\x89LZO", "lzo-compressed"),
    (b"\x5d\x00\x00", "lzma-compressed"),
)


EXAMPLES = """examples:
  kexec-bin reboot                        print the plan: the kernel the boot loader boots next, its initrd
                                          and command line (nothing is loaded)
  kexec-bin reboot --yes                  load it and boot it in 5 s (systemctl kexec under systemd)
  kexec-bin reboot --kernel 6.12.95+deb12-amd64 --append systemd.unit=rescue.target --load-only"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.add_argument(
        "--kernel",
        default="auto",
        metavar="auto|PATH|VERSION",
        help="auto (default): what the boot loader would boot next; or a kernel image's path; "
        "or a release installed as /boot/vmlinuz-VERSION",
    )
    parser.add_argument(
        "--initrd",
        metavar="PATH|none",
        help="the initrd to load (default: the chosen kernel's own); none loads no initrd",
    )
    line = parser.add_mutually_exclusive_group()
    line.add_argument("--append", metavar="TEXT", help="add TEXT to the running kernel's command line")
    line.add_argument("--command-line", metavar="TEXT", help="use TEXT as the whole command line")
    plan.add_story_options(parser)


def run(args: argparse.Namespace) -> int:
    boot_plan = plan_way_back(make_plan(args), args, args.root)
    return plan.carry_out(boot_plan, args.mode, exec_after=args.exec_after, root=args.root)


def make_plan(args: argparse.Namespace) -> plan.BootPlan:
    """The plan for `args`: the kernel and initrd chosen and checked, and the command line."""
    root = args.root
    decisions: list[str] = []
    try:
        if args.kernel == "auto":
            choice = next_kernel(root)
            candidate = choice.candidate
            decisions += [f"kernel: {candidate.source}", *choice.notes]
        else:
            candidate = named_kernel(root, args.kernel)
            decisions.append(f"kernel: {candidate.source}")
    except BootError as error:
        raise PlanError(str(error)) from None
    kernel, release = _checked_kernel(root, candidate)
    from ..trust import prefer_signed

    kernel = prefer_signed(kernel, root, decisions)  # the signed flavour when only signed kernels load here
    initrds = _initrds(root, candidate, args.initrd, decisions)
    cmdline = _command_line(root, args, decisions)
    return plan.BootPlan(
        title=f"reboot into {release or os.path.basename(candidate.kernel)}",
        kernel=kernel,
        initrds=initrds,
        cmdline=cmdline,
        decisions=decisions,
    )


def _checked_kernel(root: str, candidate: Candidate) -> tuple[plan.PlannedFile, str | None]:
    """The kernel file after its header check and its modules check, and its release."""
    from ..image import identify

    path = inside(root, candidate.kernel)
    _refuse_unless_regular(path, f"the kernel {candidate.kernel}")
    try:
        image = identify(path)
    except OSError as error:
        raise PlanError(f"{candidate.kernel}: cannot read it ({error.strerror}); check the path") from None
    if image is None:
        raise PlanError(
            f"{candidate.kernel} is not a kernel image (no bzImage, ELF, arm64 or riscv64 Image, "
            "EFI zboot, zImage, s390 or compressed vmlinuz header): give a vmlinuz from /boot"
        )
    release = image.release or candidate.release
    missing = modules_missing(root, release)
    if missing:
        raise PlanError(
            f"{candidate.kernel} ({release}): {missing}; install its package "
            f"(linux-image-{release}) or choose another kernel with --kernel"
        )
    modules = f"modules in /lib/modules/{release}" if release else "release unknown: its modules were not checked"
    return plan.PlannedFile(path, candidate.kernel, f"{image.format}; {modules}"), release


def _initrds(root: str, candidate: Candidate, given: str | None, decisions: list[str]) -> list[plan.PlannedFile]:
    if given == "none":
        decisions.append("initrd: none (--initrd none)")
        return []
    names: tuple[str, ...]
    if given is not None:
        names, why = (given,), "--initrd"
    elif candidate.initrds:
        names, why = candidate.initrds, "the kernel's own"
    else:
        release = candidate.release or "RELEASE"
        raise PlanError(
            f"no initrd for {candidate.kernel}: /boot/initrd.img-{release} (or initramfs-{release}.img) "
            f"is missing; create it (update-initramfs -c -k {release}), or give --initrd PATH, "
            "or --initrd none for a kernel that needs none"
        )
    files = []
    for name in names:
        # On this machine a relative --initrd is relative to the working folder; in a tree, to its root.
        path = inside(root, os.path.abspath(name) if root == "/" else name)
        _refuse_unless_regular(path, f"initrd {name}")
        try:
            with open(path, "rb") as file:
                head = file.read(8)
        except OSError as error:
            raise PlanError(
                f"initrd {name}: cannot read it ({error.strerror}); "
                "give an existing file with --initrd, or --initrd none"
            ) from None
        kind = next((kind for magic, kind in _INITRD_MAGICS if head.startswith(magic)), None)
        if kind is None:
            raise PlanError(
                f"initrd {name} is neither a cpio archive nor compressed: "
                "give an initramfs (update-initramfs writes /boot/initrd.img-RELEASE)"
            )
        files.append(plan.PlannedFile(path, name, f"{kind} ({why})"))
    return files


def _refuse_unless_regular(path: str, what: str) -> None:
    """Refuse a FIFO, device or folder where a kernel file should be: reading it would wait or never end."""
    from ..read import kind_of

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # the read that follows names the reason
    if not stat.S_ISREG(mode):
        raise PlanError(f"{what} is {kind_of(mode)}, not a regular file: give a regular file")


def kernel_words(cmdline: str) -> list[str]:
    """A command line split as the kernel splits it (lib/cmdline.c): at spaces outside double quotes."""
    words: list[str] = []
    current: list[str] = []
    quoted = False
    for char in cmdline:
        if char.isspace() and not quoted:
            if current:
                words.append("".join(current))
            current = []
            continue
        quoted = quoted != (char == '"')
        current.append(char)
    if current:
        words.append("".join(current))
    return words


def _command_line(root: str, args: argparse.Namespace, decisions: list[str]) -> str:
    if args.command_line is not None:
        decisions.append("command line: --command-line")
        return args.command_line
    from ..kernel import Kernel

    running = Kernel(root).cmdline()
    if running.value is None:
        raise PlanError(f"cannot read the running command line ({running.path}): give one with --command-line")
    kept: list[str] = []
    dropped: list[str] = []
    for word in kernel_words(str(running.value)):
        (dropped if word.lstrip('"').split("=", 1)[0] in DROPPED else kept).append(word)
    why = f" without {' '.join(dropped)} (they describe the previous boot)" if dropped else ""
    decisions.append(f"command line: the running kernel's ({running.path}){why}")
    if args.append:
        kept.append(args.append)
        decisions.append("command line: --append added")
    return " ".join(kept)
