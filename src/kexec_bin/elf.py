"""The CPU an ELF file is built for, read from its header with nothing but the standard library."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

# e_machine numbers of the CPUs kexec-bin builds for (elf.h), named as recipes/targets.toml names them.
MACHINES = {
    3: "EM_386",
    8: "EM_MIPS",
    20: "EM_PPC",
    21: "EM_PPC64",
    22: "EM_S390",
    40: "EM_ARM",
    62: "EM_X86_64",
    183: "EM_AARCH64",
    243: "EM_RISCV",
}


def machine(path: str) -> str | None:
    """The EM_* name of the file's `e_machine`, `EM_<number>` if unnamed, None if it is not ELF."""
    with open(path, "rb") as file:
        header = file.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF" or header[5] not in (1, 2):
        return None
    byteorder: Literal["little", "big"] = "little" if header[5] == 1 else "big"
    number = int.from_bytes(header[18:20], byteorder)
    return MACHINES.get(number, f"EM_{number}")
