"""A boot plan: the one way the story commands (`reboot`, `netboot`, `iso`) load and boot a kernel.

The commands differ only in where the kernel comes from. Each builds a `BootPlan` (model: the
files, each with where it came from and how it was checked, and the command line), asking the
machine what it must through `probes`; `boot` does the rest the same way for all of them: the
shared options, the refusals that need no download, the plan printed, the doctor's preflight
through the same program `kexec` would run, the load, and a clean boot.
"""

from .boot import add_story_options, carry_out
from .model import DRY_RUN, BootPlan, PlannedFile, size_text
from .probes import available_memory, console_parameters

# What the story commands use; the rest is in the modules themselves (boot.boot_loaded, model.shown).
__all__ = [
    "DRY_RUN",
    "BootPlan",
    "PlannedFile",
    "add_story_options",
    "available_memory",
    "carry_out",
    "console_parameters",
    "size_text",
]
