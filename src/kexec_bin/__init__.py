"""kexec-bin: a static kexec for this machine, and checks that say why kexec cannot work.

The names below load their modules on first use, so `import kexec_bin` (which every run of the
`kexec` console script does) costs next to nothing.
"""

__all__ = [
    "BinaryError",
    "BlockedError",
    "ChoiceError",
    "Finding",
    "InternalError",
    "KexecBinError",
    "KexecError",
    "Support",
    "UsageError",
    "binary",
    "execute",
    "load",
    "loaded",
    "support",
    "unload",
]

TYPE_CHECKING = False
if TYPE_CHECKING:  # the real types for the checker; at run time `__getattr__` below loads them
    from types import ModuleType

    from .api import execute, load, loaded, unload
    from .doctor import support
    from .errors import (
        BinaryError,
        BlockedError,
        ChoiceError,
        InternalError,
        KexecBinError,
        KexecError,
        UsageError,
    )
    from .findings import Finding, Support
    from .resolve import binary

    # Written into the wheel by the build (kexec_build.hook.build_info_module); a source checkout has none.
    _build_info: ModuleType

_HOMES = {
    "BinaryError": "errors",
    "BlockedError": "errors",
    "ChoiceError": "errors",
    "KexecBinError": "errors",
    "KexecError": "errors",
    "InternalError": "errors",
    "UsageError": "errors",
    "Finding": "findings",
    "Support": "findings",
    "support": "doctor",
    "binary": "resolve",
    "execute": "api",
    "load": "api",
    "loaded": "api",
    "unload": "api",
}


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'kexec_bin' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(__all__)
