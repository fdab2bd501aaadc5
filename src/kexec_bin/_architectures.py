"""Architecture names, generated from recipes/targets.toml by kexec_build.hook.architectures_module.

Do not edit: change recipes/targets.toml and run `python -m kexec_build.hook` (every wheel build
checks that this file is what the recipes say).
"""

# `uname -m` -> the kexec-bin target (wheel) that serves it.
TARGETS = {
    "x86_64": "x86_64",
    "i686": "i686",
    "i586": "i686",
    "i486": "i686",
    "i386": "i686",
    "aarch64": "aarch64",
    "armv8b": "aarch64",
    "armv8l": "aarch64",
    "armv7l": "armv7l",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64el",
}
# `uname -m` -> the Debian architecture of that target.
DEBIAN = {
    "x86_64": "amd64",
    "i686": "i386",
    "i586": "i386",
    "i486": "i386",
    "i386": "i386",
    "aarch64": "arm64",
    "armv8b": "arm64",
    "armv8l": "arm64",
    "armv7l": "armhf",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64el",
}
# The `uname -m` values of x86 PCs (where memdisk, a real-mode program, can run).
X86 = ("i386", "i486", "i586", "i686", "x86_64")
