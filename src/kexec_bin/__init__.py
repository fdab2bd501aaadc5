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

_HOMES = {
    "BinaryError": "errors", "BlockedError": "errors", "ChoiceError": "errors", "KexecBinError": "errors",
    "KexecError": "errors", "InternalError": "errors", "UsageError": "errors",
    "Finding": "findings", "Support": "findings", "support": "doctor",
    "binary": "resolve", "execute": "api", "load": "api", "loaded": "api", "unload": "api",
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
