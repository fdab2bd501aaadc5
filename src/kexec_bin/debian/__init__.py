"""Debian's archive protocol, written once: signed Release files, checksum indexes, Packages, apt sources
(archive.py), and the installer's netboot files along either signed path (installer.py)."""
