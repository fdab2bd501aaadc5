"""The story commands: where the kernel comes from (reboot: /boot, netboot: a Debian mirror, iso: an image)."""
