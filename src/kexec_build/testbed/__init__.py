"""What the tests and the bench build for themselves: Debian packages and python unpacked from the archive,
a Debian mirror's netboot files on a loopback server, ISO images, the native wheel installed in a fresh venv.

Never used by the build pipeline (recipes -> fetch -> unpack -> compile -> wheel -> release): a fixture here
may download from the host's Debian archive, the pipeline only from its recipes' verified sources.
"""
