"""ELF facts about a built binary, read with pyelftools, and the checks a target demands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import CheckError
from .recipes import Target


@dataclass(frozen=True)
class ElfFacts:
    """What the ELF headers of one file say."""

    machine: str
    elf_class: int
    endian: str
    interpreter: str | None
    needed: tuple[str, ...]

    @property
    def static(self) -> bool:
        """No program interpreter and no shared library: runs on any kernel of its CPU."""
        return self.interpreter is None and not self.needed


def read(path: Path) -> ElfFacts:
    """Read the machine, class, byte order and dynamic dependencies of `path`."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.segments import InterpSegment

    try:
        with open(path, "rb") as stream:
            elf = ELFFile(stream)
            interpreter = next(
                (segment.get_interp_name() for segment in elf.iter_segments() if isinstance(segment, InterpSegment)),
                None,
            )
            needed = tuple(
                tag.needed  # type: ignore[attr-defined]  # pyelftools sets it on DT_NEEDED tags only
                for section in elf.iter_sections()
                if isinstance(section, DynamicSection)
                for tag in section.iter_tags()
                if tag.entry.d_tag == "DT_NEEDED"
            )
            return ElfFacts(
                machine=elf["e_machine"],
                elf_class=elf.elfclass,
                endian="little" if elf.little_endian else "big",
                interpreter=interpreter,
                needed=needed,
            )
    except (ELFError, OSError) as error:
        raise CheckError(f"{path}: not a readable ELF file: {error}") from None


def check(path: Path, target: Target) -> ElfFacts:
    """Raise `CheckError` unless `path` is a static executable for `target`'s CPU."""
    facts = read(path)
    wrong = [
        f"{what} is {got}, expected {expected}"
        for what, got, expected in (
            ("machine", facts.machine, target.elf_machine),
            ("class", f"ELF{facts.elf_class}", f"ELF{target.elf_class}"),
            ("byte order", facts.endian, target.elf_endian),
        )
        if got != expected
    ]
    if facts.interpreter:
        wrong.append(f"dynamically linked (PT_INTERP {facts.interpreter})")
    if facts.needed:
        wrong.append(f"needs shared libraries {', '.join(facts.needed)}")
    if wrong:
        raise CheckError(f"{path} is not a static {target.name} binary: " + "; ".join(wrong))
    return facts
