"""The QEMU harness: boot Debian's kernels with the wheel's kexec and kexec between them (`inv prove`)."""
