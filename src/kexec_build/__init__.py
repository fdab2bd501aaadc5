"""kexec_build: the toolkit that turns recipes into static kexec binaries and wheels.

It never ships inside the runtime wheel; `tasks.py` is a thin layer of commands over it.
"""
