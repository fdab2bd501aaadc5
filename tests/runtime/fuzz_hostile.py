"""Hostile kernel trees, boot menus, ISO images and /boot trees for the fuzz test, and the worker that drives
the doctor, the API, `kexec-bin iso` and `kexec-bin reboot` through them.

`python -m tests.runtime.fuzz_hostile MATERIAL WORK FIRST COUNT PATH_DIR` builds the trees FIRST to
FIRST+COUNT-1 (tree N from random seed N, so a failure is reproduced by its number) and, in this one
process, runs `kexec-bin doctor --json --root TREE` (even trees; `kexec-bin doctor --root TREE`
on odd ones) and `kexec_bin.load(<a kernel that does not exist>, root=TREE)` on each. It prints
one JSON line per case: wall-clock and CPU seconds, peak memory (VmHWM, reset before the case),
and what went wrong.

`python -m tests.runtime.fuzz_hostile menus IMAGE WORK FIRST COUNT PATH_DIR` runs the story cases
instead (case N from seed N): by N % 4, a generated GRUB or syslinux menu set read as an image's
(`find_entries`, `--entry` choices, `--list`), the image IMAGE with random bytes changed in its
descriptors and directories through `kexec-bin iso --list`, or a hostile /boot tree (GRUB menu,
grubenv, Boot Loader Specification entries, vmlinuz links and FIFOs) through `kexec-bin reboot --root`.

A case may use 2 s of CPU. The wall clock catches hangs (a FIFO opened for reading waits forever):
an alarm ends a case after HANG_SECONDS, far above 2 s so that a machine busy with other work
(these run beside compilers and VMs) cannot end a healthy case.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import random
import resource
import signal
import stat
import sys
import time
from pathlib import Path

HANG_SECONDS = 20.0
RELEASE = "6.1.0-fuzz-amd64"
# Every file the doctor reads, with the material a healthy machine has there ("" = the kind decides).
EVIDENCE = {
    "proc/config.gz": "config.gz",
    f"boot/config-{RELEASE}": "config",
    f"lib/modules/{RELEASE}/config": "config",
    "proc/sys/kernel/osrelease": RELEASE + "\n",
    "proc/sys/kernel/kexec_load_disabled": "0\n",
    "proc/sys/kernel/kexec_load_limit_reboot": "-1\n",
    "proc/sys/kernel/kexec_load_limit_panic": "-1\n",
    "proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz ro quiet crashkernel=256M\n",
    "proc/self/status": "status",
    "proc/self/uid_map": "         0          0 4294967295\n",
    "proc/xen/capabilities": "control_d\n",
    "sys/kernel/kexec_loaded": "0\n",
    "sys/kernel/kexec_crash_loaded": "0\n",
    "sys/kernel/kexec_crash_size": "268435456\n",
    "sys/kernel/security/lockdown": "[none] integrity confidentiality\n",
    "sys/hypervisor/type": "xen\n",
    "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d0-aae4-00a0c904b13c": b"\x06\x00\x00\x00\x01",
    "sys/firmware/efi/efivars/SetupMode-8be4df61-93ca-11d0-aae4-00a0c904b13c": b"\x06\x00\x00\x00\x00",
}
KINDS = (
    "healthy",
    "absent",
    "random bytes",
    "truncated",
    "empty",
    "fifo",
    "symlink loop",
    "symlink out",
    "sparse huge",
    "folder",
    "gzip of random",
    "gzip bomb",
    "device",
    "parent is a file",
    "symlink chain",
    "hostile text",
)
HOSTILE_TEXTS = (
    b"../../../../etc",
    b"/etc/passwd",
    b"x/../../y",
    b"..",
    b"\x1b[2J\x1b]0;owned\x07",
    b"[",
    b"]",
    b"none [integrity",
    b"CapEff:\tzz\n",
    b"CapEff:\n",
    b"9" * 5000,
    b"-1\n",
    b"1\n",
    b"\xff\xfe\n",
    b"CONFIG_KEXEC=y",
    b"# CONFIG_KEXEC is not set\n",
    b"\0\0\0\0\0",
)


MATERIAL = ("config.gz", "config", "status", "bomb.gz")


def material(folder: Path) -> dict:
    """The shared contents by name: files in `folder` (written by the test) that trees hard-link or copy."""
    return {name: folder / name for name in MATERIAL}


def build_tree(root: Path, seed: int, stuff: dict) -> None:
    """Tree `seed`: each evidence file healthy or, with some chance, one of the hostile kinds."""
    rng = random.Random(seed)
    hostility = rng.choice((0.1, 0.3, 0.6, 1.0))
    root.mkdir(parents=True)
    for relative, healthy in EVIDENCE.items():
        kind = rng.choice(KINDS) if rng.random() < hostility else "healthy"
        _plant(root, root / relative, kind, healthy, rng, stuff)


def _healthy_bytes(healthy, stuff) -> bytes:
    if isinstance(healthy, bytes):
        return healthy
    return stuff[healthy].read_bytes() if healthy in stuff else healthy.encode()


def _plant(root: Path, path: Path, kind: str, healthy, rng: random.Random, stuff: dict) -> None:
    if kind == "absent":
        return
    try:
        if kind == "parent is a file":
            path.parent.parent.mkdir(parents=True, exist_ok=True)
            if not path.parent.exists():
                path.parent.write_bytes(b"a file where a folder should be")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        return  # an earlier file took the place of a folder on the way
    if path.exists() or path.is_symlink():
        return
    if kind == "healthy" and isinstance(healthy, str) and healthy in stuff:
        os.link(stuff[healthy], path)
    elif kind == "healthy":
        path.write_bytes(_healthy_bytes(healthy, stuff))
    elif kind == "random bytes":
        path.write_bytes(rng.randbytes(rng.choice((1, 7, 100, 5000, 70000))))
    elif kind == "truncated":
        data = _healthy_bytes(healthy, stuff)
        path.write_bytes(data[: rng.randrange(len(data) + 1)])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink loop":
        path.symlink_to(path.name)
    elif kind == "symlink out":
        path.symlink_to(rng.choice(("/dev/zero", "/dev/urandom", "/etc/passwd", "/proc/self/status", "/")))
    elif kind == "sparse huge":
        with open(path, "wb") as file:
            file.truncate(rng.choice((1 << 30, 1 << 40)))
    elif kind == "folder":
        path.mkdir()
    elif kind == "gzip of random":
        import gzip

        path.write_bytes(gzip.compress(rng.randbytes(rng.choice((10, 4096)))))
    elif kind == "gzip bomb":
        os.link(stuff["bomb.gz"], path)
    elif kind == "device" and os.geteuid() == 0:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, rng.choice((3, 5, 8))))  # null, zero, random
    elif kind == "symlink chain":
        target = path.with_name(path.name + ".real")
        target.write_bytes(_healthy_bytes(healthy, stuff))
        middle = path.with_name(path.name + ".middle")
        middle.symlink_to(target.name)
        path.symlink_to(middle.name)
    elif kind == "hostile text":
        path.write_bytes(rng.choice(HOSTILE_TEXTS))


class CaseTimeout(Exception):
    """A case ran past its wall-clock cap."""


def _alarm(signum, frame):
    raise CaseTimeout(f"still running after {HANG_SECONDS} s: a hang")


def cpu_seconds() -> float:
    """User and system time of this process and the programs it ran (the harmless kexec)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def peak_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear:  # "5": reset the peak resident set size (Linux >= 4.0)
        clear.write("5")


def run_case(tree: Path, as_json: bool) -> list[str]:
    """Drive the doctor (as JSON or as text) and the API's load through `tree`; what went wrong, if anything."""
    import kexec_bin
    from kexec_bin.cli import main

    problems = []
    args = ["doctor", *(["--json"] if as_json else []), "--root", str(tree)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    if code not in (0, 1) or err.getvalue():
        problems.append(f"{' '.join(args[:-1])}: exit {code}: {err.getvalue().strip()}")
    if as_json:
        try:
            json.loads(out.getvalue())
        except ValueError as error:
            problems.append(f"doctor --json printed no JSON: {error}")
    try:
        kexec_bin.load(f"/nonexistent/fuzz/{tree.name}/vmlinuz", root=str(tree))
    except (kexec_bin.BlockedError, kexec_bin.KexecError):
        pass  # refused by the preflight, or the (harmless) kexec failed: both are answers
    except kexec_bin.KexecBinError as error:
        problems.append(f"load: {type(error).__name__}: {error}")
    except Exception as error:
        problems.append(f"load raised {type(error).__name__}: {error}")
    return problems


def main() -> int:
    menus = sys.argv[1] == "menus"
    material_path, work, first, count, kexec_dir = sys.argv[2:7] if menus else sys.argv[1:6]
    os.environ["PATH"] = kexec_dir  # a harmless kexec: nothing can load whatever the preflight says
    os.environ.pop("KEXEC_BIN_PREFER", None)
    signal.signal(signal.SIGALRM, _alarm)
    for seed in range(int(first), int(first) + int(count)):
        if menus:
            case = story_case(Path(material_path), Path(work), seed)
        else:
            tree = Path(work) / f"tree-{seed}"
            build_tree(tree, seed, material(Path(material_path)))
            case = functools.partial(run_case, tree, as_json=seed % 2 == 0)
        reset_peak()
        cpu = cpu_seconds()
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        try:
            problems = case()
        except CaseTimeout as error:
            problems = [str(error)]
        except Exception as error:
            problems = [f"traceback: {type(error).__name__}: {error}"]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        print(
            json.dumps(
                {"seed": seed, "seconds": seconds, "cpu_seconds": cpu, "peak_mib": peak_mib(), "problems": problems}
            ),
            flush=True,
        )
    return 0


# Story commands: boot menus, images and /boot trees.

MENU_PATHS = (
    "/boot/grub/loopback.cfg",
    "/boot/grub/grub.cfg",
    "/boot/grub/a.cfg",
    "/boot/grub/b.cfg",
    "/isolinux/isolinux.cfg",
    "/isolinux/a.cfg",
    "/syslinux/syslinux.cfg",
)
HOSTILE_PATHS = (
    "/vmlinuz",
    "/live/vmlinuz",
    "vmlinuz",
    "../../../etc/shadow",
    "/a/../../x",
    "(hd0,1)/vmlinuz",
    "(loop)/vmlinuz",
    "($root)/x",
    "/boot/grub/a.cfg",
    "/isolinux/a.cfg",
    "a.cfg",
    "/\x1b[8m",
    "/" + "d/" * 300,
    "",
    "/big",
)
HOSTILE_WORDS = (
    "boot=live",
    "init=/bin/sh",
    '"quoted word"',
    "'single",
    '"unbalanced',
    "\\",
    "$a$a$a$a",
    "${a}${a}",
    "${",
    "$",
    "\x1b[2J",
    "\u202e",
    "9" * 5000,
    "2>0",
    ">>",
    "x" * 3000,
    ";",
    "{",
    "}",
    "#",
)


HEALTHY_PATHS = (
    "/live/vmlinuz",
    "/live/initrd.img",
    "/boot/grub/a.cfg",
    "/boot/grub/b.cfg",
    "a.cfg",
    "/isolinux/a.cfg",
)


def some_path(rng: random.Random) -> str:
    """Mostly a path that is there, so that the reading goes on past it; now and then a hostile one."""
    return rng.choice(HEALTHY_PATHS if rng.random() < 0.8 else HOSTILE_PATHS)


def grub_script(rng: random.Random) -> str:
    """A GRUB script made of the commands menus use, arranged and filled in to hurt."""
    lines = []
    for _ in range(rng.randrange(1, 60)):
        kind = rng.random()
        word = lambda: rng.choice(HOSTILE_WORDS)  # noqa: E731
        path = lambda: some_path(rng)  # noqa: E731
        if kind < 0.15:
            lines.append(f"set a={word()}" if rng.random() < 0.5 else 'set a="$a$a"')
        elif kind < 0.35:
            title = rng.choice(("Live", "Live", "Other", word()))
            ident = rng.choice(("", " --id live", " --id=x", " $menuentry_id_option 'y'"))
            lines.append(f"menuentry '{title}'{ident} {{")
            lines.append(f" linux {path()} {word()} {word()}")
            lines.append(" initrd " + " ".join(path() for _ in range(rng.choice((0, 1, 2, 40)))))
            if rng.random() < 0.8:
                lines.append("}")
        elif kind < 0.45:
            lines += [f"submenu '{word()}' {{"] * rng.choice((1, 1, 2, 2, 40))
        elif kind < 0.5:
            lines.append("}")
        elif kind < 0.6:
            lines.append(rng.choice(("if [ -e /x ]; then", "if [ x$a = xy ] ; then", "elif true", "else", "fi")))
        elif kind < 0.72:
            lines += [f"{rng.choice(('source', 'configfile'))} {path()}"] * rng.choice((1, 10))
        elif kind < 0.78:
            lines.append(rng.choice(("function f {", "load_env", "search --set=root x", "set root=(hd0,1)")))
        elif kind < 0.88:
            lines.append(f"set default={rng.choice(('0', '1>0', 'live', '9' * 5000, '2>x>y', '', word()))}")
        elif kind < 0.94:
            lines.append(f"{word()} {word()}\\")
        else:
            lines.append(rng.randbytes(rng.randrange(1, 200)).decode("utf-8", "replace"))
    return "\n".join(lines) + rng.choice(("\n", "", "\\"))


def syslinux_config(rng: random.Random) -> str:
    """An isolinux/syslinux config of labels, menus and includes, arranged and filled in to hurt."""
    lines = []
    for _ in range(rng.randrange(1, 60)):
        kind = rng.random()
        if kind < 0.3:
            lines += [f"label {rng.choice(('live', 'expert', 'x', rng.choice(HOSTILE_WORDS)))}"]
            lines += [f" kernel {some_path(rng)}", f" append {rng.choice(HOSTILE_WORDS)} initrd=a,b,,/c"]
        elif kind < 0.4:
            lines.append(rng.choice(("menu begin x", "menu begin", "menu end", "menu label ^Sub", "menu default")))
        elif kind < 0.55:
            lines += [f"{rng.choice(('include', 'menu include', 'config'))} {some_path(rng)}"] * rng.choice((1, 10))
        elif kind < 0.65:
            lines.append(f"{rng.choice(('default', 'ontimeout'))} {rng.choice(('live', 'x', '9' * 5000))}")
        elif kind < 0.7:
            lines.append("text help")
        elif kind < 0.8:
            lines.append(rng.choice((" com32 menu.c32", " localboot 0", " initrd /x,/y", " kernel memdisk")))
        else:
            lines.append(rng.randbytes(rng.randrange(1, 200)).decode("latin-1"))
    return "\n".join(lines) + "\n"


def menu_case(seed: int):
    """Menus read as an image's: the readers, the default, every kind of --entry, the listing."""
    from kexec_bin.errors import KexecBinError
    from kexec_bin.stories import iso

    rng = random.Random(seed)
    files = {
        path: grub_script(rng) if "grub" in path else syslinux_config(rng)
        for path in rng.sample(MENU_PATHS, rng.randrange(1, len(MENU_PATHS) + 1))
    }

    def run() -> list[str]:
        try:
            found = iso.find_entries(files.get, "/srv/isos/live.iso")
            iso.list_text(found)
            for wanted in (None, "1", "live", "Live", "9" * 5000, "\u00b2", "0", "expert"):
                if found.entries:
                    iso.choose_entry(found, wanted, "image.iso")
        except KexecBinError:
            pass  # a refusal is an answer
        return []

    return run


def image_case(image: Path, work: Path, seed: int):
    """`kexec-bin iso --list` on the image with random bytes changed where its descriptors and directories are."""
    rng = random.Random(seed)
    content = bytearray(image.read_bytes())
    for _ in range(rng.choice((1, 4, 16, 64))):
        offset = rng.randrange(16 * 2048, min(len(content), 64 * 2048))
        content[offset] = rng.randrange(256)
    damaged = work / f"image-{seed}.iso"
    damaged.write_bytes(content)
    return lambda: _story(["iso", str(damaged), *rng.choice((["--list"], ["--console", "none"]))])


def boot_tree_case(work: Path, seed: int):
    """`kexec-bin reboot --root` over a /boot of hostile menus, grubenv, entries and kernel files."""
    rng = random.Random(seed)
    root = work / f"boot-{seed}"
    release = "6.1.0-fuzz-amd64"
    (root / "proc").mkdir(parents=True)
    (root / f"lib/modules/{release}").mkdir(parents=True)
    (root / "proc/cmdline").write_text(rng.choice(('BOOT_IMAGE="/boot/vmlinuz 6" ro', "ro quiet", '"', "")) + "\n")
    files = {
        "boot/grub/grub.cfg": lambda: grub_script(rng).replace("/vmlinuz", f"/boot/vmlinuz-{release}"),
        "boot/grub/grubenv": lambda: (
            f"next_entry={rng.choice(HOSTILE_WORDS)}\nsaved_entry={rng.choice(HOSTILE_WORDS)}\n"
        ),
        "boot/loader/entries/a.conf": lambda: (
            f"linux {rng.choice(HOSTILE_PATHS)}\nversion {rng.choice(HOSTILE_WORDS)}\n"
        ),
        "boot/loader/loader.conf": lambda: f"default {rng.choice(('*', 'a', '[', rng.choice(HOSTILE_WORDS)))}\n",
        f"boot/vmlinuz-{release}": lambda: "MZ not a kernel",
        f"boot/initrd.img-{release}": lambda: "070701",
        "boot/vmlinuz-9": lambda: "",
    }
    for relative, text in files.items():
        if rng.random() < 0.3:
            continue
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        kind = rng.choice(("file", "file", "file", "fifo", "dangling", "loop", "folder", "huge"))
        if kind == "file":
            path.write_text(text())
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dangling":
            path.symlink_to("/nowhere/at/all")
        elif kind == "loop":
            path.symlink_to(path.name)
        elif kind == "folder":
            path.mkdir()
        else:
            with open(path, "wb") as file:
                file.truncate(1 << 40)
    return lambda: _story(["reboot", "--root", str(root)])


def story_case(image: Path, work: Path, seed: int):
    if seed % 4 in (0, 1):
        return menu_case(seed)
    if seed % 4 == 2:
        return image_case(image, work, seed)
    return boot_tree_case(work, seed)


def _story(args: list[str]) -> list[str]:
    """Run a story command in this process; anything but a plan or a refusal (exit 1) is a problem."""
    from kexec_bin.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    if code not in (0, 1) or (code == 1 and not err.getvalue().startswith("kexec-bin: ")):
        return [f"{' '.join(args)}: exit {code}: {err.getvalue().strip()}"]
    if "loaded with" in out.getvalue():
        return [f"{' '.join(args)}: loaded something: {out.getvalue()}"]
    return []


if __name__ == "__main__":
    sys.exit(main())
